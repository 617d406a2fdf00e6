// The relaxed-SIMD package (pkg/relaxed, +simd128,+relaxed-simd) against the
// SIMD128 one (pkg/node): int8 logits bit for bit on the 10k MNIST test digits.
//
//   scripts/build-wasm && "$(scripts/node22)" --test tests/node/relaxed.test.mjs
//
// Needs Node >= 22: Node 20 refuses relaxed-SIMD wasm (and computes wrong results behind a flag),
// so under an older Node (e.g. `node --test tests/node/` with Debian's Node 20)
// these tests are skipped with that reason; scripts/test-wasm runs them in Node 22
// (scripts/node22). Needs the MNIST test set in data/mnist (scripts/fetch-mnist).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(import.meta.url);
const imagesPath = join(root, 'data/mnist/t10k-images-idx3-ubyte');
const major = Number(process.versions.node.split('.')[0]);
const skip = major < 22 ? `relaxed SIMD needs Node >= 22 (this is ${process.version}); run with "$(scripts/node22)" --test` : false;

let simd, relaxed, images;

const sameBits = (a, b) => Buffer.from(a.buffer, a.byteOffset, a.byteLength)
  .equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

before(() => {
  if (skip) return;
  for (const dir of ['pkg/node', 'pkg/relaxed']) {
    assert.ok(existsSync(join(root, dir, 'tinycnn.js')), `${dir} is missing: run scripts/build-wasm first`);
  }
  simd = require(join(root, 'pkg/node/tinycnn.js'));
  relaxed = require(join(root, 'pkg/relaxed/tinycnn.js'));
  assert.ok(existsSync(imagesPath), `the MNIST test set is missing: run scripts/fetch-mnist`);
  const bytes = readFileSync(imagesPath);
  images = bytes.subarray(16, 16 + bytes.readUInt32BE(4) * 784);
});

/** logitsBatch of both packages over the first `n` digits, and the first differing image. */
function both(model, n) {
  const a = new simd.Model(readFileSync(join(root, model)));
  const b = new relaxed.Model(readFileSync(join(root, model)));
  const pixels = images.subarray(0, n * 784);
  const want = a.logitsBatch(pixels);
  const got = b.logitsBatch(pixels);
  const classes = a.classes;
  a.free();
  b.free();
  let first = -1;
  for (let i = 0; i < n && first < 0; i++) {
    if (!sameBits(want.subarray(i * classes, (i + 1) * classes), got.subarray(i * classes, (i + 1) * classes))) first = i;
  }
  return { want, got, classes, first };
}

// Under an older Node: one skipped test that says why, instead of each one skipped.
if (skip) test('pkg/relaxed against pkg/node', { skip }, () => {});
const check = skip ? () => {} : test;

check('the relaxed module validates in this engine', () => {
  const wasm = readFileSync(join(root, 'pkg/relaxed/tinycnn_bg.wasm'));
  assert.ok(WebAssembly.validate(wasm), 'pkg/relaxed/tinycnn_bg.wasm does not validate');
  // Relaxed-SIMD opcodes are 0xfd 0x100–0x113 (LEB128: 0xfd 0x80–0x93 0x02). A byte
  // scan, so only a hint (data can match); 0 until relaxed kernels exist.
  let hits = 0;
  for (let i = 0; i + 2 < wasm.length; i++) {
    if (wasm[i] === 0xfd && wasm[i + 1] >= 0x80 && wasm[i + 1] <= 0x93 && wasm[i + 2] === 0x02) hits++;
  }
  console.log(`pkg/relaxed: ${wasm.length} bytes, ~${hits} relaxed-SIMD opcode patterns`);
});

for (const [model, n] of [
  ['models/deepconvnet-int8.safetensors', 10000],
  ['models/resnet-int8.safetensors', 2000],
  ['models/inception-int8.safetensors', 2000],
]) {
  check(`${model}: relaxed logits equal SIMD128 logits bit for bit (${n} test digits)`, () => {
    const { first, want, got, classes } = both(model, n);
    assert.equal(got.length, want.length);
    assert.equal(first, -1, first < 0 ? '' :
      `image ${first}: relaxed ${got.subarray(first * classes, (first + 1) * classes)} != simd128 ${want.subarray(first * classes, (first + 1) * classes)}`);
  });
}

check('models/deepconvnet-float.safetensors: relaxed float logits within 1e-4 of SIMD128 (500 digits)', () => {
  // The float engine may use relaxed (fused) multiply-adds: close, not necessarily equal.
  const { want, got } = both('models/deepconvnet-float.safetensors', 500);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(want[i] - got[i]) / Math.max(1, Math.abs(want[i])));
  assert.ok(worst <= 1e-4, `largest relative difference ${worst}`);
});
