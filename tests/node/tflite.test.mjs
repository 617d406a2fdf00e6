// The MLPerf Tiny int8 models through the npm package: each imported model
// (target/mlperf-tiny/, written by scripts/test-wasm with `tinycnn import`)
// gives, through `Model.runInt8`, exactly TFLite Micro's output bytes on the
// 203 inputs of tests/data/tflm/ (the same check as tests/tflite_models.rs).
//
//   scripts/test-wasm pkg
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const pkgEntry = join(root, 'pkg/node/index.cjs'); // the package's require() entry
const models = ['pretrainedResnet_quant', 'kws_ref_model', 'vww_96_int8', 'ad01_int8'];

let t;
before(() => {
  assert.ok(existsSync(pkgEntry), `${pkgEntry} is missing: run scripts/build-wasm first`);
  t = createRequire(import.meta.url)(pkgEntry);
});

/** tests/data/tflm/README.md's inputs: splitmix64 bytes per input index, then all −128, all 127, the zero point. */
function inputs(len, zeroPoint) {
  const mask = (1n << 64n) - 1n;
  const all = new Int8Array(203 * len);
  for (let seed = 0n; seed < 200n; seed++) {
    const bytes = new Uint8Array(Math.ceil(len / 8) * 8);
    const view = new DataView(bytes.buffer);
    let state = seed;
    for (let i = 0; i < bytes.length; i += 8) {
      state = (state + 0x9e3779b97f4a7c15n) & mask;
      let z = state;
      z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & mask;
      z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & mask;
      view.setBigUint64(i, z ^ (z >> 31n), true);
    }
    all.set(new Int8Array(bytes.buffer, 0, len), Number(seed) * len);
  }
  all.fill(-128, 200 * len, 201 * len);
  all.fill(127, 201 * len, 202 * len);
  all.fill(zeroPoint, 202 * len, 203 * len);
  return all;
}

for (const stem of models) {
  test(`${stem}: runInt8 gives TFLite Micro's bytes on 203 inputs`, () => {
    const file = join(root, 'target/mlperf-tiny', `${stem}.safetensors`);
    assert.ok(existsSync(file), `${file} is missing: scripts/test-wasm imports it`);
    const model = new t.Model(readFileSync(file));
    const bytes = readFileSync(join(root, 'tests/data/tflm', `${stem}.out`)); // may be a view of a pooled buffer
    const want = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const zeroPoint = JSON.parse(readFileSync(join(root, 'tests/data/tflm/arena.json'), 'utf8'))[stem].input.zero_point[0];
    const got = model.runInt8(inputs(model.inputLength, zeroPoint));
    assert.equal(got.length, 203 * model.int8OutputLength);
    assert.equal(got.length, want.length);
    let differing = 0;
    for (let i = 0; i < got.length; i++) differing += got[i] !== want[i];
    assert.equal(differing, 0, `${differing} of ${got.length} bytes differ from TFLM`);
    assert.throws(() => model.runInt8(new Uint8Array(model.inputLength)), /Int8Array/);
    model.free();
  });
}
