#!/usr/bin/env node
// tinycnn's npm package (pkg/node, wasm SIMD128) beside onnxruntime-web (wasm SIMD, one
// thread) on the MLPerf Tiny models, in one Node process, rounds interleaved, as one
// Markdown table on stdout. Run by benches/peers/mlperf-tiny, which makes the inputs:
//
//   node benches/peers/mlperf-ort.mjs DIR [--rounds N]
//
// DIR holds, per model STEM: STEM.safetensors (`tinycnn import`) and STEM.onnx (the same
// .tflite through tf2onnx: QuantizeLinear/DequantizeLinear around float ops, which
// onnxruntime fuses into QLinearConv where its patterns match). Both take the same
// int8 NHWC tensors (tests/data/tflm/README.md's generator: the 200 pseudo-random
// inputs and the three edge cases) and give int8 outputs; every output is compared
// with TFLM's (tests/data/tflm/STEM.out). Timing: per round, 100 calls of each runtime
// on the first 64 inputs cycled, each call timed on its own; the median of all calls.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TFLM_INPUTS as INPUTS, tflmInputs } from '../../tests/node/tflm-inputs.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const require = createRequire(import.meta.url);
const MODELS = ['ad01_int8', 'kws_ref_model', 'pretrainedResnet_quant', 'vww_96_int8'];
const CYCLE = 64;
const CALLS = 100;

const args = process.argv.slice(2);
const dir = args[0];
const rounds = args.includes('--rounds') ? Number(args[args.indexOf('--rounds') + 1]) : 20;
if (!dir || !(rounds > 0)) {
  console.error('usage: node benches/peers/mlperf-ort.mjs DIR [--rounds N]');
  process.exit(2);
}


const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const micros = (start) => Number(process.hrtime.bigint() - start) / 1e3;

const tiny = require(join(root, 'pkg/node/index.cjs'));
const ort = await import('onnxruntime-web');
ort.env.wasm.numThreads = 1;
ort.env.wasm.proxy = false;
const ortVersion = JSON.parse(readFileSync(join(here, 'node_modules/onnxruntime-web/package.json'), 'utf8')).version;
const arena = JSON.parse(readFileSync(join(root, 'tests/data/tflm/arena.json'), 'utf8'));

console.log(`tinycnn ${tiny.version()} (pkg/node, wasm SIMD128) and onnxruntime-web ${ortVersion} (wasm SIMD, 1 thread, graphOptimizationLevel all),`);
console.log(`Node ${process.version}, ${rounds} rounds of ${CALLS} calls each, interleaved; medians of single calls.\n`);
console.log('| model | tinycnn wasm | onnxruntime-web | tinycnn ÷ onnxruntime-web | onnxruntime-web vs TFLM (inputs differing /203, largest difference) | tinycnn vs TFLM (same) |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const stem of MODELS) {
  const [safetensors, onnx] = [`${stem}.safetensors`, `${stem}.onnx`].map((f) => join(dir, f));
  if (!existsSync(safetensors) || !existsSync(onnx)) {
    console.log(`| ${stem} | (missing: ${existsSync(safetensors) ? onnx : safetensors}) | | | | |`);
    continue;
  }
  const model = new tiny.Model(readFileSync(safetensors));
  const session = await ort.InferenceSession.create(readFileSync(onnx), { executionProviders: ['wasm'], executionMode: 'sequential', graphOptimizationLevel: 'all' });
  const [inputName, outputName] = [session.inputNames[0], session.outputNames[0]];
  const len = model.inputLength;
  const xs = tflmInputs(len, arena[stem].input.zero_point[0]);
  const shape = [1, ...arena[stem].input.shape.slice(1)];
  const feeds = Array.from({ length: INPUTS }, (_, i) => ({ [inputName]: new ort.Tensor('int8', xs.slice(i * len, (i + 1) * len), shape) }));
  const tinyRun = (i) => model.runInt8(xs.subarray(i * len, (i + 1) * len));
  const ortRun = async (i) => (await session.run(feeds[i]))[outputName].data;

  // Agreement with TFLM, every input; also the warm-up.
  const bytes = readFileSync(join(root, 'tests/data/tflm', `${stem}.out`));
  const want = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const outLen = want.length / INPUTS;
  const agreement = async (run) => {
    let differing = 0;
    let maxDiff = 0;
    for (let i = 0; i < INPUTS; i++) {
      const got = await run(i);
      let differs = false;
      for (let k = 0; k < outLen; k++) {
        const d = Math.abs(got[k] - want[i * outLen + k]);
        if (d) differs = true;
        maxDiff = Math.max(maxDiff, d);
      }
      differing += differs;
    }
    return `${differing}, ${maxDiff}`;
  };
  const [tinyAgree, ortAgree] = [await agreement(tinyRun), await agreement(ortRun)];

  const times = { tiny: [], ort: [] };
  for (let r = 0; r < rounds; r++) {
    for (let c = 0; c < CALLS; c++) {
      const start = process.hrtime.bigint();
      tinyRun(c % CYCLE);
      times.tiny.push(micros(start));
    }
    for (let c = 0; c < CALLS; c++) {
      const start = process.hrtime.bigint();
      await ortRun(c % CYCLE);
      times.ort.push(micros(start));
    }
  }
  const [t, o] = [median(times.tiny), median(times.ort)];
  console.log(`| ${stem} | ${t.toFixed(1)} µs | ${o.toFixed(1)} µs | ${(t / o).toFixed(2)}× | ${ortAgree} | ${tinyAgree} |`);
  model.free();
  await session.release();
}
