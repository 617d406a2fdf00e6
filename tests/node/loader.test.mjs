// The package's browser entry (pkg/index.js) and its choice of build, in Node.
// An engine without SIMD128 is real here: V8 without SSE4.1 (--no-enable-sse4-1)
// has no SIMD128 at all, in which the SIMD128 build does not compile and the
// scalar one must run, and give the same bits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const entry = pathToFileURL(join(root, 'pkg/index.js')).href;
const model = join(root, 'models/deepconvnet-int8.safetensors');
const images = join(root, 'data/mnist/t10k-images-idx3-ubyte');

// Run in a child Node: which build the entry picks, whether each compiles, and the
// probabilities of the first 20 MNIST test digits (as hex bits) from the build it picked.
const probe = `
import { readFileSync } from 'node:fs';
const t = await import(${JSON.stringify(entry)});
const url = t.wasmUrl();
const compiles = (simd) => WebAssembly.validate(readFileSync(t.wasmUrl(simd)));
await t.default({ module_or_path: readFileSync(url) });
const m = new t.Model(readFileSync(${JSON.stringify(model)}));
const digits = readFileSync(${JSON.stringify(images)}).subarray(16, 16 + 20 * 784);
const p = m.predictBatch(digits);
m.free();
console.log(JSON.stringify({ simd: t.simdSupported(), file: url.pathname.split('/').pop(),
  simdCompiles: compiles(true), scalarCompiles: compiles(false), build: t.loadedBuild(),
  bits: Buffer.from(p.buffer).toString('hex') }));
`;
const run = (flags) => JSON.parse(execFileSync(process.execPath, [...flags, '--input-type=module', '-e', probe], { encoding: 'utf8' }));

test('pkg/index.js picks the SIMD128 build, and the scalar build on an engine without SIMD128, with equal results', () => {
  assert.ok(existsSync(join(root, 'pkg/index.js')), 'pkg/ is missing: run scripts/build-wasm first');
  assert.ok(existsSync(images), 'data/mnist is missing: run scripts/fetch-mnist');
  const simd = run([]);
  assert.equal(simd.simd, true);
  assert.equal(simd.file, 'tinycnn_bg.wasm');
  assert.ok(simd.simdCompiles && simd.scalarCompiles);

  const scalar = run(['--no-enable-sse4-1']); // V8 without SSE4.1 has no SIMD128
  assert.equal(scalar.simd, false, 'V8 without SSE4.1 still claims SIMD128');
  assert.equal(scalar.simdCompiles, false, 'the SIMD128 build compiles without SIMD128: the probe is not testing anything');
  assert.equal(scalar.scalarCompiles, true, 'the scalar build uses SIMD128 instructions');
  assert.equal(scalar.file, 'tinycnn_scalar_bg.wasm');
  assert.equal(scalar.build, 'custom'); // bytes were given; the browser path fetches by itself
  assert.equal(scalar.bits, simd.bits, 'the scalar build computes other probabilities than the SIMD128 build');
});

test('pkg/index.js: init() once, freed objects say so', async () => {
  const t = await import(entry);
  assert.equal(t.loadedBuild(), null);
  const first = t.default({ module_or_path: readFileSync(t.wasmUrl()) });
  assert.equal(t.default(), first, 'a second init() is the first one');
  await first;
  assert.equal(t.loadedBuild(), 'custom');
  const m = new t.Model(readFileSync(model));
  m.free();
  m.free();
  assert.throws(() => m.predict(new Uint8Array(784)), { message: 'Model.predict: this Model was freed (free() was called); load a new one' });
});
