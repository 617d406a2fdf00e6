// Runs a wasm32-wasip1 program in Node with the whole file system readable:
//   node scripts/wasi-run.mjs PROGRAM.wasm [ARGS...]
// An argument naming an existing file is passed as its absolute path: the program
// sees one preopened directory, '/', against which relative paths would not resolve.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { WASI } from 'node:wasi';

const [program, ...args] = process.argv.slice(2);
const absolute = args.map((arg) => (existsSync(arg) ? resolve(arg) : arg));
const wasi = new WASI({ version: 'preview1', args: [program, ...absolute], env: {}, preopens: { '/': '/' }, returnOnExit: true });
const module = await WebAssembly.compile(readFileSync(program));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
