// The WebGPU backend in headless Chromium: pkg/gpu (GpuModel, wgpu's `webgpu`
// backend) against the CPU wasm package pkg/, bit for bit, and the page's
// backend switch.
//
//   node --test tests/e2e/
//
// Chromium runs with --enable-unsafe-webgpu (harness.mjs), which gives the
// SwiftShader software adapter on a machine without a GPU. No adapter is a
// test failure, not a skip. The digits: harness.mjs's testDigits (the first
// 200 MNIST test images when data/mnist is present).

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  PIXELS, ROOT, assertClean, drawDigit, guard, launchBrowser, loadStrokes, openPage, settled, shownReading, startServer, testDigits,
} from './harness.mjs';

const IMAGES = 200;
const INT8 = join(ROOT, 'models', 'deepconvnet-int8.safetensors');
const FLOAT = join(ROOT, 'models', 'deepconvnet-float.safetensors');

/** Float32 values as their bit patterns (so −0, NaN, … compare exactly). */
const bits = (values) => Array.from(new Uint32Array(new Float32Array(values).buffer));

describe('WebGPU backend (pkg/gpu) in headless Chromium', () => {
  let server;
  let browser;
  let context;
  let page;
  let g;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser({ webgpu: true });
    context = await browser.newContext();
    g = guard(context, server.origin);
    page = g.watch(await context.newPage());
    await page.goto(`${server.origin}/tests/e2e/blank.html`);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('Chromium gives a WebGPU adapter (SwiftShader)', async () => {
    const adapter = await page.evaluate(async () => {
      if (!navigator.gpu) return { error: `navigator.gpu is missing (secure context: ${isSecureContext})` };
      const a = await navigator.gpu.requestAdapter();
      if (!a) return { error: 'navigator.gpu.requestAdapter() resolved to null' };
      return { vendor: a.info.vendor, architecture: a.info.architecture, description: a.info.description };
    });
    assert.equal(adapter.error, undefined, `no WebGPU adapter in headless Chromium: ${adapter.error}`);
    console.log(`  WebGPU adapter: ${JSON.stringify(adapter)}`);
  });

  test('GpuModel logits equal the CPU wasm logits bit for bit', async () => {
    const { source, pixels } = testDigits(IMAGES);
    const model = readFileSync(INT8);
    const out = await page.evaluate(
      async ({ modelB64, pixelsB64 }) => {
        const fromB64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
        const bytes = fromB64(modelB64);
        const pixels = fromB64(pixelsB64);
        const cpu = await import('/pkg/tinycnn.js');
        await cpu.default();
        const gpu = await import('/pkg/gpu/tinycnn.js');
        await gpu.default();
        const cpuModel = new cpu.Model(bytes);
        const cpuLogits = cpuModel.logitsBatch(pixels);
        const cpuProbs = cpuModel.predictBatch(pixels);
        const t0 = performance.now();
        const gpuModel = await gpu.GpuModel.create(bytes);
        const t1 = performance.now();
        const gpuLogits = await gpuModel.logitsBatch(pixels);
        const t2 = performance.now();
        const gpuProbs = await gpuModel.predictBatch(pixels);
        // Overlapping single-image calls are queued, each gets its own answer.
        const singles = await Promise.all(
          [0, 1, 2, 3, 4, 5, 6, 7].map((k) => gpuModel.predict(pixels.subarray(k * 784, (k + 1) * 784))),
        );
        const singleLogits = await gpuModel.logits(pixels.subarray(0, 784));
        const u32 = (f) => Array.from(new Uint32Array(f.buffer, f.byteOffset, f.length));
        const result = {
          adapter: gpuModel.adapterInfo(),
          packed: gpuModel.usesPackedDot,
          classes: gpuModel.classes,
          inputLength: gpuModel.inputLength,
          createMs: t1 - t0,
          batchMs: t2 - t1,
          cpuLogits: u32(cpuLogits),
          gpuLogits: u32(gpuLogits),
          cpuProbs: u32(cpuProbs),
          gpuProbs: u32(gpuProbs),
          singles: singles.map(u32),
          singleLogits: u32(singleLogits),
          cpuTop: [],
        };
        for (let i = 0; i < cpuProbs.length / 10; i++) {
          const row = Array.from(cpuProbs.subarray(i * 10, i * 10 + 10));
          result.cpuTop.push(row.indexOf(Math.max(...row)));
        }
        cpuModel.free();
        gpuModel.free();
        return result;
      },
      { modelB64: model.toString('base64'), pixelsB64: Buffer.from(pixels).toString('base64') },
    );
    console.log(
      `  ${source}: adapter "${out.adapter}", dot4I8Packed ${out.packed}, ` +
        `create ${out.createMs.toFixed(0)} ms, ${IMAGES} images ${out.batchMs.toFixed(0)} ms`,
    );
    assert.match(out.adapter, /swiftshader/i);
    assert.equal(out.classes, 10);
    assert.equal(out.inputLength, PIXELS);
    assert.equal(out.gpuLogits.length, IMAGES * 10);
    assert.ok(out.cpuLogits.some((b) => b !== 0), 'the CPU logits are all zero');
    for (let i = 0; i < IMAGES; i++) {
      const row = (a) => a.slice(i * 10, i * 10 + 10);
      assert.deepEqual(row(out.gpuLogits), row(out.cpuLogits), `logits of image ${i} differ`);
    }
    assert.deepEqual(out.gpuProbs, out.cpuProbs, 'probabilities (softmax) differ');
    out.singles.forEach((s, k) => assert.deepEqual(s, out.cpuProbs.slice(k * 10, k * 10 + 10), `predict() of image ${k}`));
    assert.deepEqual(out.singleLogits, out.cpuLogits.slice(0, 10), 'logits() of image 0');
    assertClean(assert, g);
  });

  test('GpuModel rejects float models and bad input with Errors', async () => {
    const float = existsSync(FLOAT) ? readFileSync(FLOAT).toString('base64') : null;
    const errors = await page.evaluate(
      async ({ floatB64, int8Url }) => {
        const gpu = await import('/pkg/gpu/tinycnn.js');
        await gpu.default();
        const fail = async (f) => {
          try {
            await f();
            return 'resolved';
          } catch (e) {
            return e instanceof Error ? e.message : `not an Error: ${e}`;
          }
        };
        const bytes = new Uint8Array(await (await fetch(int8Url)).arrayBuffer());
        const model = await gpu.GpuModel.create(bytes);
        const out = {
          garbage: await fail(() => gpu.GpuModel.create(new Uint8Array([1, 2, 3]))),
          notBytes: await fail(() => gpu.GpuModel.create('model')),
          short: await fail(() => model.predict(new Uint8Array(100))),
          ragged: await fail(() => model.logitsBatch(new Uint8Array(784 + 1))),
          array: await fail(() => model.predict([1, 2, 3])),
          float: floatB64 ? await fail(() => gpu.GpuModel.create(Uint8Array.from(atob(floatB64), (c) => c.charCodeAt(0)))) : null,
          after: (await model.predict(new Uint8Array(784))).length,
        };
        model.free();
        return out;
      },
      { floatB64: float, int8Url: '/models/deepconvnet-int8.safetensors' },
    );
    assert.match(errors.garbage, /^GpuModel\.create: /);
    assert.match(errors.notBytes, /^GpuModel\.create: the model bytes must be a Uint8Array/);
    assert.match(errors.short, /^GpuModel\.predict: input has 100 values, the model takes 784/);
    assert.match(errors.ragged, /^GpuModel\.logitsBatch: a batch must hold a whole number/);
    assert.match(errors.array, /^GpuModel\.predict: the pixels must be a Uint8Array/);
    if (errors.float !== null) assert.match(errors.float, /^GpuModel\.create: .*int8 models only.*float/);
    assert.equal(errors.after, 10, 'the model still works after rejected calls');
  });

  test('the page offers the WebGPU switch, reads on the GPU and says so', async () => {
    const { page: p, guard: pg } = await openPage(browser, server, { query: '?backend=webgpu' });
    await p.evaluate(() => window.__tinycnn.webgpuDetected);
    assert.ok(await p.locator('#backend-field').isVisible(), 'the backend switch is shown');
    assert.match(await p.evaluate(() => window.__tinycnn.webgpu?.label ?? ''), /swiftshader/i);
    assert.equal(await p.locator('#backend-select').inputValue(), 'webgpu');
    const strokes = loadStrokes('digit-3');
    await drawDigit(p, strokes);
    await p.waitForFunction(
      (n) => {
        const r = window.__tinycnn.lastResult;
        return r && r.final && r.strokes === n && r.backend === 'webgpu';
      },
      strokes.length,
      { timeout: 30_000 },
    );
    const onGpu = await p.evaluate(() => window.__tinycnn.lastResult);
    assert.equal(onGpu.text, '3');
    assert.equal(await shownReading(p), '3');
    assert.equal((await p.locator('#backend').textContent()).trim(), 'WebGPU');
    assert.equal(await p.locator('#backend').getAttribute('data-backend'), 'webgpu');
    assert.ok(pg.requests.some((u) => u.includes('/pkg/gpu/tinycnn_bg.wasm')), 'pkg/gpu was loaded');

    // Back to the CPU: the same reading, the same probabilities bit for bit, and the badge says so.
    await p.locator('#backend-select').selectOption('cpu');
    await p.waitForFunction(() => window.__tinycnn.lastResult?.backend === 'wasm-simd');
    const onCpu = await settled(p, strokes.length);
    assert.equal(onCpu.text, '3');
    assert.match(await p.locator('#backend').textContent(), /wasm SIMD/);
    assert.deepEqual(
      onGpu.digits.map((d) => bits(d.probabilities)),
      onCpu.digits.map((d) => bits(d.probabilities)),
    );

    // And to the GPU again through the switch (the GpuModel is kept).
    await p.locator('#backend-select').selectOption('webgpu');
    await p.waitForFunction(() => window.__tinycnn.lastResult?.backend === 'webgpu');
    assert.equal(await shownReading(p), '3');
    assert.equal((await p.locator('#backend').textContent()).trim(), 'WebGPU');
    assertClean(assert, pg);
    await p.context().close();
  });

  test('without an adapter: no switch, and pkg/gpu is never fetched', async () => {
    const plain = await launchBrowser(); // the usual flags: navigator.gpu gives no adapter
    try {
      const { page: p, guard: pg } = await openPage(plain, server, { query: '?backend=webgpu' });
      await p.evaluate(() => window.__tinycnn.webgpuDetected);
      assert.equal(await p.evaluate(() => window.__tinycnn.webgpu), null);
      assert.equal(await p.locator('#backend-field').isVisible(), false);
      const strokes = loadStrokes('digit-7');
      await drawDigit(p, strokes);
      const r = await settled(p, strokes.length);
      assert.equal(r.text, '7');
      assert.equal(r.backend, 'wasm-simd');
      assert.deepEqual(pg.requests.filter((u) => u.includes('/pkg/gpu/')), []);
      assertClean(assert, pg);
    } finally {
      await plain.close();
    }
  });
});
