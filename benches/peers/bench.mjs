#!/usr/bin/env node
// One runtime of the peer benchmark (benches/peers/run), as one JSON line on stdout:
//
//   node benches/peers/bench.mjs RUNTIME [--runs N] [--warmup N] [--batch-runs N] [--agree N]
//        [--onnx-dir DIR] [--native-logits FILE]
//   node benches/peers/bench.mjs report RESULTS.jsonl [--md FILE] [--title TEXT]
//
// RUNTIME: tinycnn-simd128 (pkg/node), tinycnn-relaxed (pkg/relaxed; Node >= 22),
// ort-node-int8, ort-node-fp32 (onnxruntime-node, native), ort-web-int8,
// ort-web-fp32 (onnxruntime-web, wasm SIMD), tfjs-wasm-fp32 (@tensorflow/tfjs-backend-wasm,
// XNNPACK SIMD; DeepConvNet rebuilt from models/deepconvnet-float.safetensors with tfjs ops).
// Every runtime runs on one thread.
//
// Protocol, the same for every runtime (and for tinycnn native in the run script):
// - batch 1: the first 64 MNIST test digits cycled; --warmup untimed calls, then
//   --runs calls each timed on its own (process.hrtime); median and p90 (nearest rank).
// - batch 64: the first 64 test digits as one call, --batch-runs calls → images/s of the
//   fastest call and of the median one (on a shared machine a 20–60 ms call is often
//   preempted, so the fastest is the steadier figure; both are reported).
// - agreement: argmax of the logits of the first --agree test digits against tinycnn
//   native int8's (--native-logits: raw f32 from examples/dump_logits), and accuracy.
// Peers take the normalised float input (x = (p/255 − mean)/std, NCHW; NHWC for tfjs),
// prepared before timing; tinycnn takes the raw bytes and normalises inside.
// Timed calls include what a caller must do to get logits back: session.run (a
// Promise) for onnxruntime, predict + dataSync + dispose for tfjs.
// One thread is checked: the process's CPU time over the batch-1 loop must not
// exceed its wall time (cpu_per_wall; the report flags runtimes above 1.2).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const require = createRequire(import.meta.url);
const MEAN = 0.1307;
const STD = 0.3081;
const PIXELS = 784;
const CLASSES = 10;
/** The version of an installed npm package (not every package exports its package.json). */
const pkgVersion = (name) => JSON.parse(readFileSync(join(here, 'node_modules', name, 'package.json'), 'utf8')).version;
const CYCLE = 64;
const BATCH = 64;

function parseArgs(argv) {
  const opts = { runs: 2000, warmup: 200, batchRuns: 30, agree: 1000, positional: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i];
    if (a === '--runs') opts.runs = Number(next());
    else if (a === '--warmup') opts.warmup = Number(next());
    else if (a === '--batch-runs') opts.batchRuns = Number(next());
    else if (a === '--agree') opts.agree = Number(next());
    else if (a === '--onnx-dir') opts.onnxDir = next();
    else if (a === '--native-logits') opts.nativeLogits = next();
    else if (a === '--md') opts.md = next();
    else if (a === '--title') opts.title = next();
    else opts.positional.push(a);
  }
  return opts;
}

function mnist(n) {
  const images = readFileSync(join(root, 'data/mnist/t10k-images-idx3-ubyte'));
  const labels = readFileSync(join(root, 'data/mnist/t10k-labels-idx1-ubyte'));
  return {
    pixels: new Uint8Array(images.buffer, images.byteOffset + 16, n * PIXELS),
    labels: new Uint8Array(labels.buffer, labels.byteOffset + 8, n),
  };
}

/** Normalised float32 copy of n images starting at image `start`. */
function normalise(pixels, start, n) {
  const out = new Float32Array(n * PIXELS);
  const src = pixels.subarray(start * PIXELS, (start + n) * PIXELS);
  for (let i = 0; i < out.length; i++) out[i] = (src[i] / 255 - MEAN) / STD;
  return out;
}

const at = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
const median = (sorted) => {
  const n = sorted.length;
  return n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
};
const argmax = (v, start) => {
  let best = 0;
  for (let i = 1; i < CLASSES; i++) if (v[start + i] > v[start + best]) best = i;
  return best;
};

// --- runtimes -----------------------------------------------------------------
// Each: { name, version, setup(), one(i) → logits of cycled image i (may be a Promise),
//         batch() → logits of the first 64 images, logitsOf(n) → n × 10 logits }.

function tinycnnWasm(dir, label) {
  return async (data) => {
    if (label === 'relaxed' && Number(process.versions.node.split('.')[0]) < 22) {
      throw new Error(`Node ${process.version} has no (correct) relaxed SIMD: run with Node 22 (scripts/node22)`);
    }
    const entry = join(root, dir, 'tinycnn.js');
    if (!existsSync(entry)) throw new Error(`${entry} is missing: run scripts/build-wasm`);
    const t = require(entry);
    const model = new t.Model(readFileSync(join(root, 'models/deepconvnet-int8.safetensors')));
    const image = (i) => data.pixels.subarray((i % CYCLE) * PIXELS, (i % CYCLE + 1) * PIXELS);
    const first64 = data.pixels.subarray(0, BATCH * PIXELS);
    return {
      version: `tinycnn ${t.version()} (${dir}, int8)`,
      one: (i) => model.logits(image(i)),
      batch: () => model.logitsBatch(first64),
      logitsOf: (n) => model.logitsBatch(data.pixels.subarray(0, n * PIXELS)),
    };
  };
}

async function onnxSession(ort, path, options) {
  return ort.InferenceSession.create(readFileSync(path), options);
}

function onnxRuntime(flavour, precision) {
  return async (data, opts) => {
    const dir = opts.onnxDir ?? join(root, 'target/peers');
    const path = join(dir, `deepconvnet-${precision}.onnx`);
    if (!existsSync(path)) throw new Error(`${path} is missing: benches/peers/export.py writes it`);
    let ort;
    let options;
    if (flavour === 'node') {
      ort = require('onnxruntime-node');
      options = { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' };
    } else {
      ort = await import('onnxruntime-web');
      ort.env.wasm.numThreads = 1;
      ort.env.wasm.proxy = false;
      options = { executionProviders: ['wasm'], executionMode: 'sequential', graphOptimizationLevel: 'all' };
    }
    const version = pkgVersion(`onnxruntime-${flavour}`);
    const session = await onnxSession(ort, path, options);
    const inputs = [];
    for (let i = 0; i < CYCLE; i++) inputs.push({ input: new ort.Tensor('float32', normalise(data.pixels, i, 1), [1, 1, 28, 28]) });
    const batchInput = { input: new ort.Tensor('float32', normalise(data.pixels, 0, BATCH), [BATCH, 1, 28, 28]) };
    const run = async (feeds) => (await session.run(feeds)).logits.data;
    return {
      version: `onnxruntime-${flavour} ${version} (${precision}${flavour === 'web' ? ', wasm SIMD, 1 thread' : ', CPU EP, 1 thread'})`,
      one: (i) => run(inputs[i % CYCLE]),
      batch: () => run(batchInput),
      logitsOf: async (n) => {
        const out = new Float32Array(n * CLASSES);
        for (let s = 0; s < n; s += 100) {
          const m = Math.min(100, n - s);
          const x = new ort.Tensor('float32', normalise(data.pixels, s, m), [m, 1, 28, 28]);
          out.set(await run({ input: x }), s * CLASSES);
        }
        return out;
      },
    };
  };
}

/** The float tensors of a safetensors file (F32 only): name → { shape, data }. */
function safetensors(path) {
  const bytes = readFileSync(path);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  const tensors = {};
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (t.dtype !== 'F32') throw new Error(`${path}: ${name} is ${t.dtype}, expected F32`);
    const [a, b] = t.data_offsets;
    const copy = bytes.subarray(8 + n + a, 8 + n + b);
    tensors[name] = { shape: t.shape, data: new Float32Array(copy.buffer.slice(copy.byteOffset, copy.byteOffset + copy.byteLength)) };
  }
  return tensors;
}

async function tfjsWasm(data) {
  const tf = await import('@tensorflow/tfjs-core');
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  // One thread: the SIMD (not threaded-SIMD) binary.
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  wasm.setWasmPaths(join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '/'));
  if (!(await tf.setBackend('wasm'))) throw new Error('tfjs: the wasm backend did not initialise');
  await tf.ready();
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  // DeepConvNet (training/models.py) from the float weights, NHWC.
  const w = safetensors(join(root, 'models/deepconvnet-float.safetensors'));
  const conv = (name) => {
    const { shape, data: d } = w[`${name}.weight`]; // [out, in, kh, kw] → [kh, kw, in, out]
    return {
      filter: tf.keep(tf.transpose(tf.tensor4d(d, shape), [2, 3, 1, 0])),
      bias: tf.keep(tf.tensor1d(w[`${name}.bias`].data)),
    };
  };
  const layers = { conv1: conv('conv1'), conv2: conv('conv2'), conv3: conv('conv3'), conv4: conv('conv4'), conv5: conv('conv5'), conv6: conv('conv6') };
  // fc1: PyTorch flattens C-H-W, tfjs's NHWC flattens H-W-C: permute fc1's columns.
  const fc1 = tf.keep(tf.reshape(tf.transpose(tf.tensor4d(w['fc1.weight'].data, [50, 64, 4, 4]), [2, 3, 1, 0]), [1024, 50]));
  const fc1b = tf.keep(tf.tensor1d(w['fc1.bias'].data));
  const fc2 = tf.keep(tf.transpose(tf.tensor2d(w['fc2.weight'].data, [10, 50])));
  const fc2b = tf.keep(tf.tensor1d(w['fc2.bias'].data));
  const c = (x, name, pad) => tf.fused.conv2d({ x, filter: layers[name].filter, strides: 1, pad, bias: layers[name].bias, activation: 'relu' });
  const pool = (x) => tf.maxPool(x, 2, 2, 'valid');
  const net = (x) => tf.tidy(() => {
    let y = pool(c(c(x, 'conv1', 1), 'conv2', 1));
    y = pool(c(c(y, 'conv3', 1), 'conv4', 2));
    y = pool(c(c(y, 'conv5', 1), 'conv6', 1));
    y = tf.reshape(y, [-1, 1024]);
    y = tf.fused.matMul({ a: y, b: fc1, bias: fc1b, activation: 'relu' });
    return tf.fused.matMul({ a: y, b: fc2, bias: fc2b });
  });
  const inputs = [];
  for (let i = 0; i < CYCLE; i++) inputs.push(tf.keep(tf.tensor4d(normalise(data.pixels, i, 1), [1, 28, 28, 1])));
  const batchInput = tf.keep(tf.tensor4d(normalise(data.pixels, 0, BATCH), [BATCH, 28, 28, 1]));
  const run = (x) => {
    const y = net(x);
    const out = y.dataSync();
    y.dispose();
    return out;
  };
  const version = pkgVersion('@tensorflow/tfjs-backend-wasm');
  return {
    version: `@tensorflow/tfjs-backend-wasm ${version} (fp32, ${simd ? 'SIMD' : 'no SIMD'}, 1 thread)`,
    one: (i) => run(inputs[i % CYCLE]),
    batch: () => run(batchInput),
    logitsOf: (n) => {
      const out = new Float32Array(n * CLASSES);
      for (let s = 0; s < n; s += 100) {
        const m = Math.min(100, n - s);
        const x = tf.tensor4d(normalise(data.pixels, s, m), [m, 28, 28, 1]);
        out.set(run(x), s * CLASSES);
        x.dispose();
      }
      return out;
    },
  };
}

const RUNTIMES = {
  'tinycnn-simd128': tinycnnWasm('pkg/node', 'simd128'),
  'tinycnn-relaxed': tinycnnWasm('pkg/relaxed', 'relaxed'),
  'ort-node-int8': onnxRuntime('node', 'int8'),
  'ort-node-fp32': onnxRuntime('node', 'fp32'),
  'ort-web-int8': onnxRuntime('web', 'int8'),
  'ort-web-fp32': onnxRuntime('web', 'fp32'),
  'tfjs-wasm-fp32': tfjsWasm,
};

async function measure(name, opts) {
  const data = mnist(Math.max(opts.agree, BATCH, CYCLE));
  const r = await RUNTIMES[name](data, opts);
  // Agreement first (also a warm-up), then timing.
  const logits = await r.logitsOf(opts.agree);
  let correct = 0;
  for (let i = 0; i < opts.agree; i++) if (argmax(logits, i * CLASSES) === data.labels[i]) correct++;
  let agree = null;
  let identical = null;
  if (opts.nativeLogits && existsSync(opts.nativeLogits)) {
    const raw = readFileSync(opts.nativeLogits);
    const native = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + opts.agree * CLASSES * 4));
    agree = 0;
    for (let i = 0; i < opts.agree; i++) if (argmax(logits, i * CLASSES) === argmax(native, i * CLASSES)) agree++;
    identical = Buffer.from(logits.buffer, logits.byteOffset, opts.agree * CLASSES * 4)
      .equals(Buffer.from(native.buffer, 0, opts.agree * CLASSES * 4));
  }
  for (let i = 0; i < opts.warmup; i++) await r.one(i);
  const times = new Float64Array(opts.runs);
  let sink = 0;
  // CPU time of the whole process over the timed loop: ≈ wall time on one thread;
  // more means the runtime used other threads.
  const cpuStart = process.cpuUsage();
  const wallStart = process.hrtime.bigint();
  for (let i = 0; i < opts.runs; i++) {
    const start = process.hrtime.bigint();
    const out = await r.one(i);
    times[i] = Number(process.hrtime.bigint() - start) / 1e3;
    sink += out[0];
  }
  const cpu = process.cpuUsage(cpuStart);
  const cpuPerWall = (cpu.user + cpu.system) / (Number(process.hrtime.bigint() - wallStart) / 1e3);
  times.sort();
  for (let i = 0; i < 3; i++) await r.batch();
  const batches = new Float64Array(opts.batchRuns);
  for (let i = 0; i < opts.batchRuns; i++) {
    const start = process.hrtime.bigint();
    const out = await r.batch();
    batches[i] = Number(process.hrtime.bigint() - start) / 1e9;
    sink += out[0];
  }
  batches.sort();
  return {
    name, version: r.version, node: process.version, runs: opts.runs,
    median_us: median(times), p90_us: at(times, 0.9), min_us: times[0],
    batch64_images_per_s: BATCH / median(batches), batch64_best_images_per_s: BATCH / batches[0],
    cpu_per_wall: cpuPerWall, agree_n: opts.agree, agree, identical, accuracy: correct / opts.agree, sink: Number.isFinite(sink),
  };
}

// --- report ---------------------------------------------------------------------

const ROWS = [
  // name, label, kind, ratio baselines
  ['tinycnn-native', 'tinycnn native int8', 'native'],
  ['ort-node-int8', 'onnxruntime-node int8 (QOperator)', 'native'],
  ['ort-node-fp32', 'onnxruntime-node fp32', 'native'],
  ['tinycnn-simd128', 'tinycnn wasm SIMD128 int8 (pkg/node)', 'wasm'],
  ['tinycnn-relaxed', 'tinycnn wasm relaxed SIMD int8 (pkg/relaxed)', 'wasm'],
  ['ort-web-int8', 'onnxruntime-web wasm int8 (QOperator)', 'wasm'],
  ['ort-web-fp32', 'onnxruntime-web wasm fp32', 'wasm'],
  ['tfjs-wasm-fp32', 'tfjs-backend-wasm fp32 (XNNPACK)', 'wasm'],
];

function report(file, opts) {
  const results = new Map();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const r = JSON.parse(line);
    results.set(r.name, r);
  }
  const native = results.get('tinycnn-native');
  const simd = results.get('tinycnn-simd128');
  const ok = (r) => r && !r.error;
  const ratio = (r, base) => (ok(r) && ok(base) ? `${(r.median_us / base.median_us).toFixed(2)}×` : '–');
  const num = (v, d = 0) => (v == null || !Number.isFinite(v) ? '–' : v.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));
  const lines = [];
  if (opts.title) lines.push(opts.title, '');
  lines.push('| runtime | median µs | p90 µs | batch-64 img/s: best (median) | time ÷ tinycnn native | time ÷ tinycnn wasm SIMD128 | agrees with tinycnn native (argmax) | accuracy |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|');
  const notes = [];
  for (const [name, label] of ROWS) {
    const r = results.get(name);
    if (!r) continue;
    if (!ok(r)) {
      lines.push(`| ${label} | – | – | – | – | – | – | – |`);
      notes.push(`- ${label}: not measured: ${r.error}`);
      continue;
    }
    const agree = r.reference ? 'reference' : r.agree == null ? '–'
      : `${(100 * r.agree / r.agree_n).toFixed(1)}%${r.identical ? ' (logits bit-identical)' : ''}`;
    const wasmRatio = ROWS.find((x) => x[0] === name)[2] === 'wasm' ? ratio(r, simd) : '–';
    lines.push(`| ${label} | ${num(r.median_us, 1)} | ${num(r.p90_us, 1)} | ${num(r.batch64_best_images_per_s)} (${num(r.batch64_images_per_s)}) | ${ratio(r, native)} | ${wasmRatio} | ${agree} | ${r.accuracy == null ? '–' : (100 * r.accuracy).toFixed(1) + '%'} |`);
  }
  const threaded = ROWS.map(([n]) => results.get(n)).filter((r) => ok(r) && r.cpu_per_wall > 1.2);
  for (const r of threaded) {
    notes.push(`- ${r.name}: process CPU time was ${r.cpu_per_wall.toFixed(2)}× the wall time over the batch-1 loop: more than one thread ran.`);
  }
  lines.push('');
  lines.push('Versions: ' + ROWS.map(([n]) => results.get(n)).filter(ok).map((r) => `${r.version}${r.node ? ` in Node ${r.node}` : ''}`).join('; ') + '.');
  if (notes.length) lines.push('', ...notes);
  const text = lines.join('\n') + '\n';
  process.stdout.write(text);
  if (opts.md) writeFileSync(opts.md, text);
}

const opts = parseArgs(process.argv.slice(2));
const [what, arg] = opts.positional;
if (what === 'report') {
  report(arg, opts);
} else if (RUNTIMES[what]) {
  try {
    console.log(JSON.stringify(await measure(what, opts)));
  } catch (e) {
    console.log(JSON.stringify({ name: what, node: process.version, error: String(e?.message ?? e).split('\n')[0] }));
    console.error(e);
  }
  process.exit(0); // onnxruntime-web / tfjs may keep handles open
} else {
  console.error(`usage: bench.mjs RUNTIME|report … (runtimes: ${Object.keys(RUNTIMES).join(', ')})`);
  process.exit(2);
}
