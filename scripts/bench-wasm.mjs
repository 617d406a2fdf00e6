#!/usr/bin/env node
// Latency of one prediction (batch 1) and throughput at batch 64 in Node: the
// SIMD128 package (pkg/node), the relaxed-SIMD one (pkg/relaxed) and the scalar
// one (pkg/scalar) side by side. Build them with scripts/build-wasm.
//
//   node scripts/bench-wasm.mjs [MODEL] [RUNS]
//   "$(scripts/node22)" scripts/bench-wasm.mjs      # with the relaxed package
//
// The relaxed package runs only under Node >= 22 (Node 20 refuses relaxed-SIMD
// wasm without --experimental-wasm-relaxed-simd and computes wrong results with it); under an older Node it is skipped, with the
// reason printed. MODEL defaults to models/deepconvnet-int8.safetensors (else
// the tiny test fixture); RUNS to 2000. Inputs are MNIST test digits when
// data/mnist has them, else pseudo-random pixels. Each batch-1 run is timed on
// its own (process.hrtime), after a warm-up; median and p90 are reported.
// Batch 64: predictBatch over 64 distinct images, the median of 30 calls.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const shipped = join(root, 'models/deepconvnet-int8.safetensors');
const modelPath = process.argv[2] ?? (existsSync(shipped) ? shipped : join(root, 'tests/fixtures/tiny-float.safetensors'));
const runs = Number(process.argv[3] ?? 2000);
const warmup = 200;
const batch = 64;
const batchRuns = 30;
const nodeMajor = Number(process.versions.node.split('.')[0]);

const modelBytes = readFileSync(modelPath);
const imagesPath = join(root, 'data/mnist/t10k-images-idx3-ubyte');
let images;
if (existsSync(imagesPath)) {
  images = readFileSync(imagesPath).subarray(16, 16 + 1000 * 784);
} else {
  let s = 1;
  images = new Uint8Array(1000 * 784).map(() => ((s = (s * 1103515245 + 12345) >>> 0) >>> 24));
}

const at = (a, q) => a[Math.min(a.length - 1, Math.floor(q * a.length))];

function bench(label, dir) {
  const entry = join(root, dir, 'tinycnn.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run scripts/build-wasm`);
  const t = require(entry);
  const model = new t.Model(modelBytes);
  const n = images.length / model.inputLength;
  const image = (i) => images.subarray((i % n) * model.inputLength, (i % n + 1) * model.inputLength);
  for (let i = 0; i < warmup; i++) model.predict(image(i));
  const times = new Float64Array(runs);
  const cpu = new Float64Array(runs);
  for (let i = 0; i < runs; i++) {
    const x = image(i);
    const cpuStart = process.cpuUsage();
    const start = process.hrtime.bigint();
    model.predict(x);
    times[i] = Number(process.hrtime.bigint() - start) / 1e6;
    const used = process.cpuUsage(cpuStart);
    cpu[i] = (used.user + used.system) / 1e3;
  }
  times.sort();
  cpu.sort();
  let batchPerSec = NaN;
  if (typeof model.predictBatch === 'function' && n >= batch) {
    const pixels = images.subarray(0, batch * model.inputLength);
    model.predictBatch(pixels);
    const calls = new Float64Array(batchRuns);
    for (let i = 0; i < batchRuns; i++) {
      const start = process.hrtime.bigint();
      model.predictBatch(pixels);
      calls[i] = Number(process.hrtime.bigint() - start) / 1e9;
    }
    calls.sort();
    batchPerSec = batch / at(calls, 0.5);
  }
  const info = model.info();
  model.free();
  return {
    label, median: at(times, 0.5), p90: at(times, 0.9), min: times[0],
    cpuMedian: at(cpu, 0.5), cpuP90: at(cpu, 0.9), batchPerSec, info,
  };
}

const variants = [['simd128', 'pkg/node'], ['relaxed', 'pkg/relaxed'], ['scalar', 'pkg/scalar']];
const results = [];
const skipped = [];
for (const [label, dir] of variants) {
  if (label === 'relaxed' && nodeMajor < 22) {
    skipped.push(`relaxed: skipped, Node ${process.version} has no (correct) relaxed SIMD; ` +
      'run with Node 22: "$(scripts/node22)" scripts/bench-wasm.mjs');
    continue;
  }
  if (label === 'relaxed' && !existsSync(join(root, dir, 'tinycnn.js'))) {
    skipped.push(`relaxed: skipped, ${dir} is missing (an older scripts/build-wasm?)`);
    continue;
  }
  results.push(bench(label, dir));
}
const simd = results[0];
const { info } = simd;
console.log(`model ${modelPath.replace(root + '/', '')}: ${info.dtype}, ${info.params} params, ${(info.macs / 1e6).toFixed(2)} M MACs`);
console.log(`Node ${process.version}, batch 1, ${runs} runs after ${warmup} warm-up, ms per image; ` +
  `batch ${batch}: predictBatch, median of ${batchRuns} calls`);
console.log('(wall = elapsed time, includes waiting for a busy CPU; cpu = this process\'s CPU time)');
const f = (v) => v.toFixed(3).padStart(9);
console.log('variant  wall median  wall p90  wall min  cpu median  cpu p90   batch-64 img/s  vs simd128 (wall median)');
for (const r of results) {
  console.log(`${r.label.padEnd(8)} ${f(r.median)}   ${f(r.p90)} ${f(r.min)}  ${f(r.cpuMedian)} ${f(r.cpuP90)}   ` +
    `${(Number.isFinite(r.batchPerSec) ? r.batchPerSec.toFixed(0) : '-').padStart(14)}  ${(simd.median / r.median).toFixed(2)}x`);
}
for (const line of skipped) console.log(line);
const scalar = results.find((r) => r.label === 'scalar');
console.log(`simd128 speed-up over scalar: ${(scalar.median / simd.median).toFixed(2)}x (wall median), ` +
  `${(scalar.cpuMedian / simd.cpuMedian).toFixed(2)}x (cpu median), ${(scalar.min / simd.min).toFixed(2)}x (min)`);
const relaxed = results.find((r) => r.label === 'relaxed');
if (relaxed) {
  console.log(`relaxed speed-up over simd128: ${(simd.median / relaxed.median).toFixed(2)}x (wall median), ` +
    `${(simd.cpuMedian / relaxed.cpuMedian).toFixed(2)}x (cpu median)`);
}
