// Numbers as people write them (issue #16), on the page in headless Chromium:
// digits that touch or whose boxes overlap, small digits in the pad's corners,
// mixed sizes, fast sloppy strokes (tests/e2e/strokes/generate.mjs, HARD).
// Each stroke set is drawn once with real pointer events, then read by every
// model choice; the reading by connected ink (?segmentation=pixels, the page
// before strokes were used) is printed beside it for comparison.
//
//   node --test tests/e2e/handwriting.test.mjs

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { groupStrokes } from '../../www/segment.js';
import { ROOT, assertClean, drawStrokes, launchBrowser, loadStrokes, openPage, settled, shownReading, startServer } from './harness.mjs';
import { HARD } from './strokes/generate.mjs';

const MODELS = ['deepconvnet', 'resnet', 'inception', 'ensemble'];
const expected = (name) => name.split('-').at(-1);

test('the strokes of every fixture group into as many digits as it has', () => {
  for (const file of readdirSync(join(ROOT, 'tests', 'e2e', 'strokes')).filter((f) => f.endsWith('.json'))) {
    const name = file.slice(0, -'.json'.length);
    const groups = groupStrokes(loadStrokes(name).map((points) => ({ points })));
    assert.equal(groups.length, expected(name).length, `${name}: ${JSON.stringify(groups.map((g) => g.strokes))}`);
  }
  assert.deepEqual(groupStrokes([]), []);
  // A dot beside a digit joins it; alone it is one.
  const bar = { points: [[100, 20], [102, 200]] };
  const dot = { points: [[110, 210]] };
  assert.deepEqual(groupStrokes([bar, dot]).map((g) => g.strokes), [[0, 1]]);
  assert.deepEqual(groupStrokes([dot]).map((g) => g.strokes), [[0]]);
});

describe('handwriting as people write it', () => {
  let server;
  let browser;
  let main;
  const table = [];

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    main = await openPage(browser, server);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    if (table.length) {
      console.log(`\nstroke set × model: read by strokes (now) / by connected ink (before)`);
      console.log(`  ${'stroke set'.padEnd(24)} ${MODELS.map((m) => m.padEnd(22)).join(' ')}`);
      for (const row of table) {
        console.log(`  ${row.name.padEnd(24)} ${MODELS.map((m) => `${row[m].strokes} / ${row[m].pixels}`.padEnd(22)).join(' ')}`);
      }
      const cells = table.flatMap((row) => MODELS.map((m) => [row[m], expected(row.name)]));
      const right = (k) => cells.filter(([c, want]) => c[k] === want).length;
      console.log(`  read right: ${right('strokes')}/${cells.length} by strokes, ${right('pixels')}/${cells.length} by connected ink`);
    }
  });

  async function readWith(page, key) {
    if ((await page.evaluate(() => window.__tinycnn.model)) !== key) {
      await page.locator('#model').selectOption(key);
      await page.waitForFunction((k) => window.__tinycnn.model === k && window.__tinycnn.lastResult?.model === k, key, { timeout: 20_000 });
    }
    const pixels = await page.evaluate(() => {
      window.__tinycnn.setSegmentation('pixels');
      return window.__tinycnn.lastResult.text;
    });
    const strokes = await page.evaluate(() => {
      window.__tinycnn.setSegmentation('strokes');
      return window.__tinycnn.lastResult.text;
    });
    return { strokes, pixels };
  }

  for (const name of Object.keys(HARD)) {
    test(`${name} reads ${expected(name)} with every model`, async () => {
      const { page } = main;
      await page.locator('#model').selectOption(MODELS[0]);
      await page.waitForFunction((k) => window.__tinycnn.model === k, MODELS[0], { timeout: 20_000 });
      if (await page.locator('#clear').isEnabled()) await page.locator('#clear').click();
      await page.waitForFunction(() => window.__tinycnn.lastResult?.strokes === 0);
      const strokes = loadStrokes(name);
      await drawStrokes(page, strokes);
      await settled(page, strokes.length);
      const row = { name };
      for (const key of MODELS) row[key] = await readWith(page, key);
      table.push(row);
      for (const key of MODELS) assert.equal(row[key].strokes, expected(name), `${key} read ${row[key].strokes}`);
      assert.equal(await shownReading(page), expected(name));
      assertClean(assert, main.guard);
    });
  }
});
