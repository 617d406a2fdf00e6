// Builds the app into dist/ with esbuild: main.js for the page,
// worker.js for the Web Worker, tinycnn's two .wasm files beside them (its init()
// fetches the one the browser supports from next to the code), index.html and a model.
//
//   node build.mjs [--model PATH]   (default: the repository's models/deepconvnet-int8.safetensors)
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';

const args = process.argv.slice(2);
const modelAt = args.indexOf('--model');
const model = modelAt >= 0 ? args[modelAt + 1] : '../../models/deepconvnet-int8.safetensors';
const dist = 'dist';

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist);
await build({
  entryPoints: ['src/main.ts', 'src/worker.ts'],
  bundle: true,
  format: 'esm', // no splitting: each entry is one file, no second round trip for a shared chunk
  minify: true,
  target: 'es2022',
  outdir: dist,
  logLevel: 'warning',
});
const tinycnn = dirname(createRequire(import.meta.url).resolve('tinycnn/package.json'));
for (const wasm of ['tinycnn_bg.wasm', 'tinycnn_scalar_bg.wasm']) copyFileSync(join(tinycnn, wasm), join(dist, wasm));
copyFileSync('index.html', join(dist, 'index.html'));
copyFileSync(model, join(dist, 'deepconvnet-int8.safetensors'));

// What a browser with SIMD128 downloads: the code, the SIMD128 .wasm and the model.
const sizes = {};
for (const file of readdirSync(dist)) {
  const bytes = readFileSync(join(dist, file));
  sizes[file] = { raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
}
const sum = (files, key) => files.reduce((s, f) => s + sizes[f][key], 0);
const code = Object.keys(sizes).filter((f) => f.endsWith('.js'));
const shipped = [...code, 'tinycnn_bg.wasm'];
console.log(JSON.stringify({ files: sizes, jsAndWasm: { raw: sum(shipped, 'raw'), gzip: sum(shipped, 'gzip') } }));
