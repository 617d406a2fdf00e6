// The digit page in headless Chromium: real pointer events replaying
// handwritten stroke fixtures, the visible reading, model switching, loading a
// user's model, and the page's own timings.
//
//   node --test tests/e2e/
//
// Starts its own server (scripts/serve on a free port, which builds pkg/ when
// missing or stale) and Debian's /usr/bin/chromium (installed by scripts/setup,
// like tests/e2e/node_modules).
// Screenshots go to screenshots/ at the repository root.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ROOT,
  assertClean,
  drawDigit,
  drawStrokes,
  launchBrowser,
  loadStrokes,
  makeDenseModel,
  openPage,
  screenshotPath,
  settled,
  shownReading,
  startServer,
} from './harness.mjs';

const SHIPPED = ['deepconvnet', 'resnet', 'inception'];
const modelFile = (name, kind = 'int8') => join(ROOT, 'models', `${name}-${kind}.safetensors`);
const missingModels = SHIPPED.filter((m) => !existsSync(modelFile(m)));
// The shipped models are committed: a missing one is a failure, not a skip.
test('the shipped models are present', () => {
  assert.deepEqual(missingModels, [], 'models missing from models/ (train and quantise them: models/MODEL_CARD.md)');
  assert.ok(existsSync(modelFile('deepconvnet', 'float')), 'models/deepconvnet-float.safetensors is missing');
});

const EMPTY = 'Nothing drawn yet'; // the reading of an empty pad
const timings = [];
const shots = [];

describe('digit page', () => {
  let server;
  let browser;
  let main; // { context, page, guard, timings }

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    main = await openPage(browser, server);
    timings.push({ run: 'cold (new context)', ...main.timings });
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    if (timings.length) {
      console.log('\nnavigation → first prediction possible (wasm + model loaded):');
      for (const t of timings) {
        console.log(
          `  ${t.run.padEnd(34)} ${t.navigationToReady.toFixed(1).padStart(7)} ms` +
            `   (page + modules ${t.appStart.toFixed(1)} ms, wasm init ${t.wasmInitMs.toFixed(1)} ms, model ${t.modelLoadMs.toFixed(1)} ms)`,
        );
      }
    }
    if (shots.length) console.log(`\nscreenshots (${shots.length}) in ${screenshotPath('')}:\n  ${shots.map((s) => s.split('/').pop()).join('\n  ')}`);
  });

  async function shot(page, name, opts = {}) {
    const path = screenshotPath(name);
    await page.screenshot({ path, ...opts });
    shots.push(path);
  }

  async function clear(page) {
    if (await page.locator('#clear').isEnabled()) await page.locator('#clear').click();
    await page.waitForFunction(() => window.__tinycnn.lastResult?.strokes === 0);
    assert.equal(await page.locator('#reading').textContent(), EMPTY);
  }

  test('loads: backend, model and timing are shown', async () => {
    const { page } = main;
    assert.match(await page.locator('#backend').textContent(), /wasm SIMD/);
    assert.equal(await page.evaluate(() => window.__tinycnn.backend), 'wasm-simd');
    assert.match(await page.locator('#status').textContent(), /ready · DeepConvNet/);
    assert.match(await page.locator('#model-info').textContent(), /DeepConvNet · int8 · .* parameters · .* MACs · arena/);
    assert.equal(await page.locator('#model').inputValue(), 'deepconvnet');
    assert.ok(main.timings.navigationToReady > 0);
    await shot(page, 'page-empty.png', { fullPage: true });
    assertClean(assert, main.guard);
  });

  for (let d = 0; d <= 9; d++) {
    test(`reads a handwritten ${d}`, async () => {
      const { page } = main;
      await clear(page);
      const strokes = loadStrokes(`digit-${d}`);
      await drawDigit(page, strokes);
      const result = await settled(page, strokes.length);
      assert.equal(result.text, String(d), `page read ${result.text} (confidences ${result.digits.map((x) => x.confidence.toFixed(3))})`);
      assert.equal(await shownReading(page), String(d));
      // One tile, the top probability bar is the digit, the latency is shown.
      assert.equal(await page.locator('#digits li').count(), 1);
      assert.equal((await page.locator('#digits .tile-digit').textContent()).trim(), String(d));
      assert.equal((await page.locator('#probs li.top .prob-digit').textContent()).trim(), String(d));
      assert.match(await page.locator('#latency').textContent(), /\d ms inference · [\d.]+ ms total/);
      await shot(page, `digit-${d}.png`);
      assertClean(assert, main.guard);
    });
  }

  for (const number of ['2026', '314']) {
    test(`reads the number ${number} written in a row`, async () => {
      const { page } = main;
      await clear(page);
      const strokes = loadStrokes(`number-${number}`);
      const before = await page.evaluate(() => window.__tinycnn.predictions);
      await drawStrokes(page, strokes);
      const result = await settled(page, strokes.length);
      const runs = (await page.evaluate(() => window.__tinycnn.predictions)) - before;
      // Live while drawing (throttled to ~20/s), plus one at each stroke end.
      assert.ok(runs > strokes.length * 2, `${runs} recognitions for ${strokes.length} strokes: no live updates?`);
      assert.equal(result.text, number);
      assert.equal(await shownReading(page), number);
      const tiles = await page.locator('#digits .tile-digit').allTextContents();
      assert.deepEqual(tiles.map((t) => t.trim()), number.split(''));
      assert.equal(await page.locator('#digits canvas.thumb').count(), number.length);
      await shot(page, `number-${number}.png`, { fullPage: true });
      assertClean(assert, main.guard);
    });
  }

  test('a digit tile selects the digit shown in detail', async () => {
    const { page } = main; // still showing 314
    await page.locator('#digits button').first().click();
    assert.equal(await page.locator('#digits button').first().getAttribute('aria-pressed'), 'true');
    assert.match(await page.locator('#probs-which').textContent(), /digit 1 of 3/);
    assert.equal((await page.locator('#probs li.top .prob-digit').textContent()).trim(), '3');
  });

  test('shows the first conv layer feature maps', async () => {
    const { page } = main;
    await clear(page);
    const strokes = loadStrokes('digit-8');
    await drawDigit(page, strokes);
    await settled(page, strokes.length);
    const maps = page.locator('#features canvas');
    const info = await page.evaluate(() => window.__tinycnn);
    assert.ok((await maps.count()) >= 4, 'feature maps');
    assert.match(await page.locator('#features-caption').textContent(), /DeepConvNet · conv/);
    // Maps are normalised per map: most show some structure (not one flat colour).
    const spread = await page.evaluate(() =>
      [...document.querySelectorAll('#features canvas')].map((c) => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let lo = 255;
        let hi = 0;
        for (let i = 0; i < d.length; i += 4) {
          lo = Math.min(lo, d[i]);
          hi = Math.max(hi, d[i]);
        }
        return hi - lo;
      }),
    );
    assert.ok(spread.filter((s) => s > 100).length >= spread.length / 2, `feature maps look flat: ${spread}`);
    // The 28×28 image is painted (some white ink on black).
    const inked = await page.evaluate(() => {
      const d = document.getElementById('seen').getContext('2d').getImageData(0, 0, 28, 28).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] > 128) n++;
      return n;
    });
    assert.ok(inked > 40 && inked < 500, `ink pixels in the 28×28 view: ${inked}`);
    assert.ok(info.predictions > 0);
    await shot(page, 'features-8.png', { fullPage: true });
  });

  test('undo removes the last stroke and clear empties the page', async () => {
    const { page } = main;
    await clear(page);
    const four = loadStrokes('digit-4');
    assert.equal(four.length, 2);
    await drawDigit(page, four);
    await settled(page, 2);
    assert.equal(await shownReading(page), '4');
    await page.locator('#undo').click();
    const r = await settled(page, 1);
    assert.equal(r.strokes, 1);
    await page.keyboard.press('Control+z');
    await page.waitForFunction(() => window.__tinycnn.lastResult?.strokes === 0);
    assert.equal(await page.locator('#reading').textContent(), EMPTY);
    assert.ok(await page.locator('#undo').isDisabled());
    await drawDigit(page, four);
    await settled(page, 2);
    await page.locator('#clear').click();
    await page.waitForFunction(() => window.__tinycnn.lastResult?.strokes === 0);
    assert.equal(await page.locator('#reading').textContent(), EMPTY);
    assert.equal(await page.locator('#digits li').count(), 0);
    assert.equal(await page.locator('#features canvas').count(), 0);
  });

  test('keeps working offline once loaded', async () => {
    const { page, context } = main;
    const before = main.guard.requests.length;
    await context.setOffline(true);
    try {
      await clear(page);
      const strokes = loadStrokes('digit-5');
      await drawDigit(page, strokes);
      await settled(page, strokes.length);
      assert.equal(await shownReading(page), '5');
    } finally {
      await context.setOffline(false);
    }
    assert.deepEqual(main.guard.requests.slice(before), [], 'no requests while drawing');
  });

  for (const key of ['resnet', 'inception', 'ensemble']) {
    test(`the ${key} model reads 2026`, async () => {
      const { page } = main;
      await page.locator('#model').selectOption(key);
      await page.waitForFunction((k) => window.__tinycnn.model === k, key, { timeout: 20_000 });
      assert.match(await page.locator('#status').textContent(), /ready · /);
      await clear(page);
      const strokes = loadStrokes('number-2026');
      await drawStrokes(page, strokes);
      const result = await settled(page, strokes.length);
      assert.equal(result.model, key);
      assert.equal(result.text, '2026');
      assert.equal(await shownReading(page), '2026');
      if (key === 'ensemble') await shot(page, 'ensemble-2026.png', { fullPage: true });
      assertClean(assert, main.guard);
    });
  }

  test('a malformed model file shows an error and the previous model keeps working', async () => {
    const { page } = main;
    await page.locator('#model').selectOption('deepconvnet');
    await page.waitForFunction(() => window.__tinycnn.model === 'deepconvnet');
    const junk = Buffer.concat([Buffer.from([0x40, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{"not": "a model"'), Buffer.alloc(300, 7)]);
    await page.locator('#model-file').setInputFiles({ name: 'broken.safetensors', mimeType: 'application/octet-stream', buffer: junk });
    const error = page.locator('#model-error');
    await error.waitFor({ state: 'visible' });
    const text = await error.textContent();
    assert.match(text, /Could not load “broken\.safetensors”: .+\. Still using DeepConvNet\./);
    assert.equal(await page.locator('#model').inputValue(), 'deepconvnet');

    await clear(page);
    const strokes = loadStrokes('digit-3');
    await drawDigit(page, strokes);
    const result = await settled(page, strokes.length);
    assert.equal(result.model, 'deepconvnet');
    assert.equal(await shownReading(page), '3');
    assert.ok(await error.isVisible(), 'the error stays until a model loads');
    await shot(page, 'malformed-model.png');
    assertClean(assert, main.guard); // a bad file is no console error
  });

  test('a file dropped on the pad is loaded (and refused if malformed)', async () => {
    const { page } = main;
    await page.evaluate(() => {
      const dt = new DataTransfer();
      dt.items.add(new File([new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9])], 'dropped.safetensors'));
      const canvas = document.getElementById('canvas');
      for (const type of ['dragenter', 'dragover']) canvas.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
    });
    assert.ok(await page.locator('#drop-overlay').isVisible(), 'drop overlay shown while dragging');
    await shot(page, 'drag-over.png');
    await page.evaluate(() => {
      const dt = new DataTransfer();
      dt.items.add(new File([new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9])], 'dropped.safetensors'));
      document.getElementById('canvas').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    });
    await page.waitForFunction(() => /dropped\.safetensors/.test(document.getElementById('model-error').textContent));
    assert.match(await page.locator('#model-error').textContent(), /Could not load “dropped\.safetensors”: .+\. Still using DeepConvNet\./);
    assert.ok(await page.locator('#drop-overlay').isHidden());
    assert.equal(await page.evaluate(() => window.__tinycnn.model), 'deepconvnet');
  });

  test('a valid model for other inputs is refused with a readable reason', async () => {
    const { page } = main;
    const buffer = makeDenseModel({ channels: 3, height: 32, width: 32 });
    await page.locator('#model-file').setInputFiles({ name: 'cifar.safetensors', mimeType: 'application/octet-stream', buffer });
    await page.waitForFunction(() => /cifar/.test(document.getElementById('model-error').textContent));
    assert.match(
      await page.locator('#model-error').textContent(),
      /Could not load “cifar\.safetensors”: it expects 3×32×32 inputs, but this page feeds 1×28×28 digit images\. Still using DeepConvNet\./,
    );
    assert.equal(await page.evaluate(() => window.__tinycnn.model), 'deepconvnet');
  });

  test('your own model: a small valid file is loaded and used, then the shipped one again', async () => {
    const { page } = main;
    await page.locator('#model-file').setInputFiles(join(ROOT, 'tests', 'fixtures', 'tiny-float.safetensors'));
    await page.waitForFunction(() => window.__tinycnn.model === 'custom');
    assert.ok(await page.locator('#model-error').isHidden(), 'the earlier error is gone');
    assert.match(await page.locator('#model option:checked').textContent(), /Yours: tiny-float\.safetensors/);
    assert.match(await page.locator('#model-info').textContent(), /^tiny-float\.safetensors · float · /);
    await clear(page);
    const strokes = loadStrokes('digit-2');
    await drawDigit(page, strokes);
    const result = await settled(page, strokes.length);
    assert.equal(result.model, 'custom');
    assert.match(await shownReading(page), /^\d$/); // an untrained fixture: any digit
    await page.locator('#model').selectOption('deepconvnet');
    await page.waitForFunction(() => window.__tinycnn.model === 'deepconvnet');
    assert.equal(await shownReading(page), '2');
    assertClean(assert, main.guard);
  });

  test('your own model: a float model file loads and reads digits', async () => {
    const { page } = main;
    const file = modelFile('deepconvnet', 'float');
    await page.locator('#model-file').setInputFiles({ name: 'my-deepconvnet.safetensors', mimeType: 'application/octet-stream', buffer: readFileSync(file) });
    await page.waitForFunction(() => window.__tinycnn.model === 'custom');
    assert.ok(await page.locator('#model-error').isHidden());
    assert.match(await page.locator('#model option:checked').textContent(), /my-deepconvnet\.safetensors/);
    assert.match(await page.locator('#model-info').textContent(), /float/);
    await clear(page);
    const strokes = loadStrokes('number-314');
    await drawStrokes(page, strokes);
    const result = await settled(page, strokes.length);
    assert.equal(result.model, 'custom');
    assert.equal(await shownReading(page), '314');
    assertClean(assert, main.guard);
  });

  test('your own PyTorch model: a tinycnn_export file (docs/PYTORCH.md) reads a number', async () => {
    const { page } = main;
    const file = join(ROOT, 'tests', 'fixtures', 'pytorch-export', 'mobilenetv2-trained.safetensors');
    await page.locator('#model-file').setInputFiles({ name: 'my-mobilenetv2.safetensors', mimeType: 'application/octet-stream', buffer: readFileSync(file) });
    await page.waitForFunction(() => window.__tinycnn.model === 'custom');
    assert.ok(await page.locator('#model-error').isHidden());
    await clear(page);
    const strokes = loadStrokes('number-314');
    await drawStrokes(page, strokes);
    const result = await settled(page, strokes.length);
    assert.equal(result.model, 'custom');
    assert.equal(await shownReading(page), '314');
    assertClean(assert, main.guard);
  });

  test('warm start: reload with the cache', async () => {
    const { page } = main;
    for (let i = 1; i <= 2; i++) {
      await page.reload();
      await page.evaluate(() => window.tinycnnReady.then(() => true));
      const t = await page.evaluate(() => ({ ...window.__tinycnn.timings }));
      assert.ok(t.navigationToReady > 0);
      timings.push({ run: `warm (reload ${i}, cached)`, ...t });
    }
    assertClean(assert, main.guard);
  });

  test('a second cold start in a new context, and the dark theme', async () => {
    const key = missingModels.includes('inception') ? 'deepconvnet' : 'inception';
    const fresh = await openPage(browser, server, { colorScheme: 'dark', query: `?model=${key}` });
    try {
      timings.push({ run: `cold (new context, ${key})`, ...fresh.timings });
      assert.equal(await fresh.page.locator('#model').inputValue(), key);
      const strokes = loadStrokes('number-2026');
      await drawStrokes(fresh.page, strokes);
      await settled(fresh.page, strokes.length);
      assert.equal(await shownReading(fresh.page), '2026');
      await shot(fresh.page, 'page-dark.png', { fullPage: true });
      assertClean(assert, fresh.guard);
    } finally {
      await fresh.context.close();
    }
  });

  test('narrow screen (phone) layout and touch-style drawing area', async () => {
    const fresh = await openPage(browser, server, { viewport: { width: 390, height: 844 } });
    try {
      assert.equal(await fresh.page.locator('#canvas').evaluate((c) => getComputedStyle(c).touchAction), 'none');
      const strokes = loadStrokes('digit-7');
      await drawDigit(fresh.page, strokes);
      await settled(fresh.page, strokes.length);
      assert.equal(await shownReading(fresh.page), '7');
      await shot(fresh.page, 'page-phone.png', { fullPage: true });
      assertClean(assert, fresh.guard);
    } finally {
      await fresh.context.close();
    }
  });
});
