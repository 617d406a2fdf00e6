// The MLPerf Tiny int8 models and TFLM's examples through the npm package: each imported model
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
import { TFLM_INPUTS, tflmInputs } from './tflm-inputs.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const pkgEntry = join(root, 'pkg/node/index.cjs'); // the package's require() entry
// MLPerf Tiny's four (models/mlperf-tiny/), then TFLM's examples (models/tflm-examples/).
const models = ['pretrainedResnet_quant', 'kws_ref_model', 'vww_96_int8', 'ad01_int8', 'person_detect', 'hello_world_int8', 'micro_speech_quantized'];

let t;
before(() => {
  assert.ok(existsSync(pkgEntry), `${pkgEntry} is missing: run scripts/build-wasm first`);
  t = createRequire(import.meta.url)(pkgEntry);
});


for (const stem of models) {
  test(`${stem}: runInt8 gives TFLite Micro's bytes on 203 inputs`, () => {
    const file = join(root, 'target/mlperf-tiny', `${stem}.safetensors`);
    assert.ok(existsSync(file), `${file} is missing: scripts/test-wasm imports it`);
    const model = new t.Model(readFileSync(file));
    const bytes = readFileSync(join(root, 'tests/data/tflm', `${stem}.out`)); // may be a view of a pooled buffer
    const want = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const zeroPoint = JSON.parse(readFileSync(join(root, 'tests/data/tflm/arena.json'), 'utf8'))[stem].input.zero_point[0];
    const got = model.runInt8(tflmInputs(model.inputLength, zeroPoint));
    assert.equal(got.length, TFLM_INPUTS * model.int8OutputLength);
    assert.equal(got.length, want.length);
    let differing = 0;
    for (let i = 0; i < got.length; i++) differing += got[i] !== want[i];
    assert.equal(differing, 0, `${differing} of ${got.length} bytes differ from TFLM`);
    assert.throws(() => model.runInt8(new Uint8Array(model.inputLength)), /Int8Array/);
    model.free();
  });
}
