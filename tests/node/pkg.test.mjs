// The npm package (pkg/, built by scripts/build-wasm) in Node, against the native engine.
//
//   scripts/build-wasm && node --test tests/node/
//
// Needs the MNIST test set in data/mnist (scripts/fetch-mnist): without it the
// tests fail, they do not skip. The native reference logits come from
// examples/dump_logits.rs (cargo run --release --example dump_logits), or from
// the file named by TINYCNN_NATIVE_LOGITS if a script produced it beforehand.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const pkgEntry = join(root, 'pkg/node/index.cjs'); // the package's require() entry
const dataDir = join(root, 'data/mnist');
const imagesPath = join(dataDir, 't10k-images-idx3-ubyte');
const labelsPath = join(dataDir, 't10k-labels-idx1-ubyte');
const shipped = join(root, 'models/deepconvnet-int8.safetensors');
const modelPath = existsSync(shipped) ? shipped : join(root, 'tests/fixtures/tiny-float.safetensors');

let t; // the package
let modelBytes;
let images; // Uint8Array, n × 784
let labels; // Uint8Array, n
let native; // Float32Array, n × classes

function idx(path, magic) {
  const bytes = readFileSync(path);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  assert.equal(view.getUint32(0), magic, `${path} is not an IDX file`);
  const dims = magic & 0xff;
  const shape = [];
  for (let d = 0; d < dims; d++) shape.push(view.getUint32(4 + 4 * d));
  return { shape, data: new Uint8Array(bytes.buffer, bytes.byteOffset + 4 + 4 * dims) };
}

const argmax = (v, start, n) => {
  let best = 0;
  for (let i = 1; i < n; i++) if (v[start + i] > v[start + best]) best = i;
  return best;
};
const sameBits = (a, b) => Buffer.from(a.buffer, a.byteOffset, a.byteLength)
  .equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

before(() => {
  assert.ok(existsSync(pkgEntry), `${pkgEntry} is missing: run scripts/build-wasm first`);
  t = createRequire(import.meta.url)(pkgEntry);
  assert.ok(existsSync(imagesPath) && existsSync(labelsPath),
    `the MNIST test set is missing from ${dataDir}: run scripts/fetch-mnist`);
  const im = idx(imagesPath, 0x0803);
  images = im.data.subarray(0, im.shape[0] * 784);
  labels = idx(labelsPath, 0x0801).data;
  modelBytes = readFileSync(modelPath);

  let file = process.env.TINYCNN_NATIVE_LOGITS;
  let tmp;
  if (!file) {
    tmp = mkdtempSync(join(tmpdir(), 'tinycnn-'));
    file = join(tmp, 'logits.f32');
    execFileSync('cargo', ['run', '--quiet', '--release', '--example', 'dump_logits', '--',
      modelPath, dataDir, String(im.shape[0]), file], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  }
  const raw = readFileSync(file);
  native = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  if (tmp) rmSync(tmp, { recursive: true });
});

test(`logits equal the native engine's bit for bit (${modelPath.replace(root + '/', '')})`, () => {
  const model = new t.Model(modelBytes);
  const classes = model.classes;
  assert.equal(native.length, (images.length / 784) * classes, 'native logits cover the test set');
  for (let i = 0; i < 1000; i++) {
    const logits = model.logits(images.subarray(i * 784, (i + 1) * 784));
    const want = native.subarray(i * classes, (i + 1) * classes);
    assert.ok(sameBits(logits, want), `image ${i}: wasm ${logits} != native ${want}`);
  }
  // The whole test set through logitsBatch, and the accuracy.
  const all = model.logitsBatch(images);
  assert.ok(sameBits(all, native), 'logitsBatch over the test set equals the native logits');
  const n = images.length / 784;
  let wasmCorrect = 0, nativeCorrect = 0;
  for (let i = 0; i < n; i++) {
    if (argmax(all, i * classes, classes) === labels[i]) wasmCorrect++;
    if (argmax(native, i * classes, classes) === labels[i]) nativeCorrect++;
  }
  console.log(`accuracy in Node: ${wasmCorrect}/${n} = ${(100 * wasmCorrect / n).toFixed(2)}% (native: ${nativeCorrect})`);
  assert.equal(wasmCorrect, nativeCorrect);
  model.free();
});

test('probabilities are the softmax of the logits, batch equals one by one', () => {
  const model = new t.Model(modelBytes);
  const batch = images.subarray(0, 50 * 784);
  const probs = model.predictBatch(batch);
  for (let i = 0; i < 50; i++) {
    const p = model.predict(batch.subarray(i * 784, (i + 1) * 784));
    assert.ok(sameBits(p, probs.subarray(i * 10, (i + 1) * 10)));
    const sum = p.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-5, `probabilities sum to ${sum}`);
  }
  model.free();
});

test('1000 predictions do not grow wasm memory', () => {
  const model = new t.Model(modelBytes);
  const one = images.subarray(0, 784);
  model.predict(one);
  const beforeBytes = t.wasmMemoryBytes();
  for (let i = 0; i < 1000; i++) model.predict(images.subarray((i % 100) * 784, (i % 100 + 1) * 784));
  model.predictBatch(images.subarray(0, 100 * 784));
  assert.equal(t.wasmMemoryBytes(), beforeBytes);
  model.free();
});

test('info and firstConvFeatures', () => {
  const model = new t.Model(modelBytes);
  const info = model.info();
  assert.deepEqual(info.input, [1, 28, 28]);
  assert.equal(info.classes, 10);
  assert.ok(info.params > 0 && info.macs > 0 && info.arenaBytes > 0);
  assert.ok(info.dtype === 'int8' || info.dtype === 'float');
  assert.equal(info.nodes[0].op, 'conv2d');
  const maps = model.firstConvFeatures(images.subarray(0, 784));
  assert.equal(maps.node, info.nodes[0].name);
  assert.deepEqual([maps.channels, maps.height, maps.width], info.nodes[0].shape);
  assert.ok(maps.data instanceof Float32Array);
  assert.equal(maps.data.length, maps.channels * maps.height * maps.width);
  model.free();
});

/** A float model file: side×side input, flatten, dense to `classes` (a safetensors file by hand). */
function denseModel(side, classes) {
  const graph = JSON.stringify({
    format: 1, dtype: 'float', input: { channels: 1, height: side, width: side },
    nodes: [{ name: 'flatten', op: 'flatten', inputs: ['input'] }, { name: 'fc', op: 'dense', inputs: ['flatten'] }],
  });
  const weights = new Float32Array(classes * side * side).map((_, i) => (i % 7) * 0.01);
  let header = JSON.stringify({
    __metadata__: { tinycnn: graph },
    'fc.weight': { dtype: 'F32', shape: [classes, side * side], data_offsets: [0, weights.byteLength] },
  });
  header += ' '.repeat((8 - (header.length % 8)) % 8);
  const out = new Uint8Array(8 + header.length + weights.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(new TextEncoder().encode(header), 8);
  out.set(new Uint8Array(weights.buffer), 8 + header.length);
  return out;
}

test('misuse throws an Error with a clear message, and the model keeps working', () => {
  const model = new t.Model(modelBytes);
  const good = images.subarray(0, 784);
  const want = model.predict(good);
  const check = (fn, pattern) => {
    assert.throws(fn, (e) => e instanceof Error && pattern.test(e.message), `expected ${pattern}`);
    assert.ok(sameBits(model.predict(good), want), `a valid predict works after ${pattern}`);
  };
  check(() => model.predict(new Uint8Array(100)), /^Model\.predict: input has 100 values, the model takes 784$/);
  check(() => model.predict('pixels'), /Model\.predict: the pixels must be a Uint8Array or Uint8ClampedArray, got a string/);
  check(() => model.predict(new Float32Array(784)), /must be a Uint8Array or Uint8ClampedArray, got a Float32Array/);
  check(() => model.predict([...good]), /got an Array/);
  check(() => model.predict(), /got undefined/);
  check(() => model.logits(null), /Model\.logits: .*got null/);
  check(() => model.predictBatch(new Uint8Array(785)), /whole number \(≥ 1\) of 784-byte images, got 785 bytes/);
  check(() => model.firstConvFeatures(new Uint8Array(3)), /Model\.firstConvFeatures: input has 3 values/);
  check(() => new t.Model(new Uint8Array(16)), /^new Model: /);
  check(() => new t.Model(modelBytes.subarray(0, 1000)), /^new Model: not a safetensors file/);
  check(() => new t.Model('model.safetensors'), /the model bytes must be a Uint8Array or Uint8ClampedArray, got a string/);
  check(() => new t.Ensemble([model, denseModel(8, 10)]), /element 1 is not a Model/);
  check(() => new t.Ensemble([model, new t.Model(denseModel(8, 10))]),
    /^new Ensemble: ensemble member 1: its input shape differs from the first model's$/);
  check(() => new t.Ensemble([model, new t.Model(denseModel(28, 3))]), /ensemble member 1: its class count differs/);
  check(() => new t.Ensemble([]), /needs at least one model/);
  check(() => t.preprocess(new Uint8ClampedArray(16), 2, 3), /^preprocess: data: the RGBA buffer has 16 bytes/);
  for (const fn of [t.preprocess, t.segment]) {
    assert.throws(() => fn(new Uint8ClampedArray(16), 2, 2),
      (e) => e instanceof Error && e.name === 'EmptyImageError' && /no ink/.test(e.message));
  }

  // Use after free: an Error naming the call (the freed-object guard, js/guard.js).
  const freed = new t.Model(modelBytes);
  freed.free();
  check(() => freed.predict(good), /^Model\.predict: this Model was freed/);
  check(() => freed.info(), /^Model\.info: this Model was freed/);
  check(() => new t.Ensemble([model, freed]), /^new Ensemble: element 1 cannot be used \(was it freed\?\)/);
  model.free();
  assert.throws(() => model.predict(good), { message: /^Model\.predict: this Model was freed/ });
});

test('more misuse: NaN/Inf numbers, float arrays, ensembles and freed objects; the module keeps working', () => {
  const model = new t.Model(modelBytes);
  const good = images.subarray(0, 784);
  const want = model.predict(good);
  const works = (what) => {
    assert.ok(sameBits(model.predict(good), want), `a valid predict works after ${what}`);
    const fresh = new t.Model(modelBytes);
    assert.ok(sameBits(fresh.predict(good), want), `a new Model works after ${what}`);
    fresh.free();
  };
  const check = (fn, pattern) => {
    assert.throws(fn, (e) => e instanceof Error && pattern.test(e.message), `expected ${pattern}`);
    works(pattern);
  };

  // Float input: the API takes pixel bytes, so NaN/Inf never reach the engine.
  check(() => model.predict(new Float32Array(784).fill(NaN)), /^Model\.predict: the pixels must be a Uint8Array or Uint8ClampedArray, got a Float32Array$/);
  check(() => model.logits(new Float64Array(784).fill(Infinity)), /^Model\.logits: .*got a Float64Array$/);
  check(() => model.predictBatch(Array(784).fill(-Infinity)), /^Model\.predictBatch: .*got an Array$/);
  check(() => model.predict(NaN), /^Model\.predict: .*got a number$/);
  check(() => model.predict(new Int8Array(784)), /got an Int8Array/);
  check(() => model.predict(new Uint16Array(784)), /got a Uint16Array/);
  check(() => model.predictBatch(new Uint8Array(0)), /whole number \(≥ 1\) of 784-byte images, got 0 bytes/);
  check(() => model.firstConvFeatures(new Float32Array(784)), /^Model\.firstConvFeatures: .*got a Float32Array$/);
  // NaN, ±Infinity, fractions, 0, negatives and too large as image sizes.
  const rgba = new Uint8ClampedArray(28 * 28 * 4);
  for (const fn of [t.preprocess, t.segment]) {
    const name = fn === t.preprocess ? 'preprocess' : 'segment';
    for (const [w, h, bad] of [[NaN, 28, 'width'], [28, Infinity, 'height'], [-Infinity, 28, 'width'], [28.5, 28, 'width'],
      [0, 28, 'width'], [28, -28, 'height'], [4097, 28, 'width'], [undefined, 28, 'width']]) {
      check(() => fn(rgba, w, h), new RegExp(`^${name}: ${bad} must be a whole number from 1 to 4096, got `));
    }
    check(() => fn(new Float32Array(28 * 28 * 4).fill(NaN), 28, 28), new RegExp(`^${name}: the RGBA data must be a Uint8Array or Uint8ClampedArray, got a Float32Array$`));
    check(() => fn(rgba, 28, 27), new RegExp(`^${name}: data: the RGBA buffer has 3136 bytes`));
  }

  // Ensembles: the same checks as a Model, and models of different shapes refused.
  const ensemble = new t.Ensemble([model, new t.Model(modelBytes)]);
  const ensembleWant = ensemble.predict(good);
  const checkEnsemble = (fn, pattern) => {
    check(fn, pattern);
    assert.ok(sameBits(ensemble.predict(good), ensembleWant), `the ensemble works after ${pattern}`);
  };
  checkEnsemble(() => ensemble.predict(new Uint8Array(783)), /^Ensemble\.predict: input has 783 values, the model takes 784$/);
  checkEnsemble(() => ensemble.predict(new Float32Array(784).fill(NaN)), /^Ensemble\.predict: .*got a Float32Array$/);
  checkEnsemble(() => ensemble.predictBatch(new Uint8Array(784 * 2 + 1)), /^Ensemble\.predictBatch: .*got 1569 bytes$/);
  checkEnsemble(() => new t.Ensemble([model, new t.Model(denseModel(14, 10))]), /^new Ensemble: ensemble member 1: its input shape differs/);
  checkEnsemble(() => new t.Ensemble([new t.Model(denseModel(14, 10)), model]), /^new Ensemble: ensemble member 1: its input shape differs/);
  checkEnsemble(() => new t.Ensemble('models'), /^new Ensemble: expected an array of Models, got a string$/);
  checkEnsemble(() => new t.Ensemble([model, null]), /element 1 is not a Model \(it is null\)/);

  // Use after free, of every method and getter: an Error naming the call; a second free() does nothing.
  const freed = new t.Model(modelBytes);
  freed.free();
  const calls = { predict: () => freed.predict(good), logits: () => freed.logits(good),
    predictBatch: () => freed.predictBatch(good), logitsBatch: () => freed.logitsBatch(good),
    runInt8: () => freed.runInt8(new Int8Array(784)), info: () => freed.info(),
    firstConvFeatures: () => freed.firstConvFeatures(good), inputLength: () => freed.inputLength,
    classes: () => freed.classes, int8OutputLength: () => freed.int8OutputLength };
  for (const [name, fn] of Object.entries(calls)) {
    check(fn, new RegExp(`^Model\\.${name}: this Model was freed \\(free\\(\\) was called\\); load a new one$`));
  }
  freed.free();
  freed[Symbol.dispose]();
  check(() => new t.Ensemble([model, freed]), /^new Ensemble: element 1 cannot be used \(was it freed\?\): Model\.__tinycnnShare: this Model was freed/);
  const freedEnsemble = new t.Ensemble([model]);
  freedEnsemble.free();
  check(() => freedEnsemble.predict(good), /^Ensemble\.predict: this Ensemble was freed/);
  check(() => freedEnsemble.predictBatch(good), /^Ensemble\.predictBatch: this Ensemble was freed/);
  check(() => freedEnsemble.size, /^Ensemble\.size: this Ensemble was freed/);
  freedEnsemble.free();
  // The model that shared its weights and the other models still work.
  assert.equal(model.predict(good).length, 10);
  assert.ok(sameBits(ensemble.predict(good), ensembleWant));
  ensemble.free();
  model.free();
});

test('ensembles copy their members', () => {
  const a = new t.Model(modelBytes);
  const b = new t.Model(modelBytes);
  const ensemble = new t.Ensemble([a, b]);
  const one = images.subarray(0, 784);
  const pa = a.predict(one);
  const pe = ensemble.predict(one);
  for (let i = 0; i < 10; i++) assert.ok(Math.abs(pa[i] - pe[i]) < 1e-6);
  a.free();
  b.free();
  assert.ok(sameBits(ensemble.predict(one), pe), 'the ensemble outlives its members');
  assert.equal(ensemble.predictBatch(images.subarray(0, 5 * 784)).length, 50);
  ensemble.free();
});

test('preprocess turns MNIST digits drawn on a canvas back into MNIST digits', () => {
  const model = new t.Model(modelBytes);
  const n = 1000, scale = 4, side = 28 * scale;
  let raw = 0, pre = 0;
  for (let i = 0; i < n; i++) {
    const digit = images.subarray(i * 784, (i + 1) * 784);
    // Black ink on a white 112×112 RGBA canvas, 4× nearest-neighbour.
    const rgba = new Uint8ClampedArray(side * side * 4);
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        const v = 255 - digit[Math.floor(y / scale) * 28 + Math.floor(x / scale)];
        rgba.set([v, v, v, 255], (y * side + x) * 4);
      }
    }
    const p = t.preprocess(rgba, side, side);
    assert.equal(p.length, 784);
    if (argmax(model.predict(digit), 0, 10) === labels[i]) raw++;
    if (argmax(model.predict(p), 0, 10) === labels[i]) pre++;
  }
  console.log(`first ${n} digits: ${raw} correct as given, ${pre} after drawing + preprocess`);
  if (raw > 0.9 * n) assert.ok(pre >= raw - 0.03 * n, `preprocess costs too much accuracy: ${pre} vs ${raw}`);
  model.free();
});
