// The npm package as a JS app uses it: `npm pack` → a fresh project installs the
// tarball → tsc checks the types → esbuild bundles examples/web-app → headless
// Chromium runs it (a Web Worker owns the model; ?inference=main on the main thread),
// with SIMD128 and without it (V8 without SSE4.1 has no SIMD128, in workers too),
// the digit page included.
//
//   scripts/build-wasm && node --test tests/e2e/example-app.test.mjs
//
// Needs npm and the registry (esbuild and typescript, pinned in the app's package.json).

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, assertClean, drawDigit, guard, launchBrowser, loadStrokes, openPage, settled, shownReading, startServer, testDigits } from './harness.mjs';

const APP = join(ROOT, 'examples', 'web-app');
const PKG = join(ROOT, 'pkg');
const NO_SIMD = '--no-enable-sse4-1';
const npm = (args, cwd) => execFileSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, encoding: 'utf8' });

let dir; // the fresh project
let tarball;
let sizes;
const timings = [];

before(() => {
  assert.ok(existsSync(join(PKG, 'package.json')), 'pkg/ is missing: run scripts/build-wasm first');
  dir = mkdtempSync(join(tmpdir(), 'tinycnn-app-'));
  const [packed] = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: PKG, encoding: 'utf8' }));
  tarball = { path: join(dir, packed.filename), files: packed.files.map((f) => f.path), size: packed.size };
  const app = join(dir, 'app');
  for (const f of ['package.json', 'tsconfig.json', 'index.html', 'build.mjs', 'src']) cpSync(join(APP, f), join(app, f), { recursive: true });
  const manifest = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8'));
  manifest.dependencies.tinycnn = `file:${tarball.path}`;
  writeFileSync(join(app, 'package.json'), JSON.stringify(manifest, null, 2));
  npm(['install'], app);
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (timings.length) {
    console.log('\nexample app, navigation → first prediction shown (a 7 the app draws):');
    for (const t of timings) console.log(`  ${t.run.padEnd(36)} ${t.ms.toFixed(1).padStart(7)} ms${t.build === 'none' ? '' : `  (wasm ${t.build})`}`);
  }
});

test('npm pack: the tarball installs as a package, with both builds, the worker and the types', () => {
  const installed = join(dir, 'app', 'node_modules', 'tinycnn');
  assert.ok(lstatSync(installed).isDirectory() && !lstatSync(installed).isSymbolicLink(), 'tinycnn is linked, not installed');
  for (const f of ['index.js', 'index.d.ts', 'tinycnn.js', 'tinycnn_bg.wasm', 'tinycnn_scalar_bg.wasm', 'worker.js', 'worker.d.ts', 'worker-host.js', 'node/index.cjs']) {
    assert.ok(tarball.files.includes(f), `the tarball lacks ${f}`);
    assert.ok(existsSync(join(installed, f)), `the installed package lacks ${f}`);
  }
  assert.deepEqual(tarball.files.filter((f) => /\.tgz$|^target\/|node_modules/.test(f)), [], 'stray files in the tarball');
  const version = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')).version;
  assert.equal(version, readFileSync(join(ROOT, 'Cargo.toml'), 'utf8').match(/^version = "(.*)"/m)[1]);
  console.log(`tarball: ${tarball.files.length} files, ${tarball.size} bytes`);
});

test('tsc --noEmit: src/api.ts uses every export as typed, and a misuse fails', () => {
  const app = join(dir, 'app');
  const installed = join(app, 'node_modules', 'tinycnn');
  // Every exported function and class, and every member of the classes, appears in api.ts.
  const api = readFileSync(join(app, 'src', 'api.ts'), 'utf8');
  const missing = [];
  for (const file of ['index.d.ts', 'tinycnn.d.ts', 'build.d.ts', 'worker.d.ts']) {
    const types = readFileSync(join(installed, file), 'utf8');
    for (const [, name] of types.matchAll(/^export (?:declare )?(?:function|class) (\w+)/gm)) {
      if (name !== '__wbg_init' && !new RegExp(`\\b${name}\\b`).test(api)) missing.push(`${file}: ${name}`);
    }
    for (const [, body] of types.matchAll(/^export class \w+ \{([\s\S]*?)^\}/gm)) {
      for (const [, member] of body.matchAll(/^ {2,4}(?:readonly |static )?(\w+)[(:]/gm)) {
        if (member !== 'constructor' && !new RegExp(`\\.${member}\\b`).test(api)) missing.push(`${file}: .${member}`);
      }
    }
  }
  assert.deepEqual(missing, [], 'exports src/api.ts does not use');
  execFileSync('npx', ['tsc', '--noEmit', '-p', '.'], { cwd: app, encoding: 'utf8' });
  writeFileSync(join(app, 'src', 'misuse.ts'), "import { Model } from 'tinycnn';\nexport const p: string = new Model(new Uint8Array(0)).predict(42);\n");
  try {
    assert.throws(() => execFileSync('npx', ['tsc', '--noEmit', '-p', '.'], { cwd: app, encoding: 'utf8', stdio: 'pipe' }),
      (e) => /TS2345/.test(e.stdout) && /TS2322/.test(e.stdout), 'tsc accepted predict(42) returning a string');
  } finally {
    rmSync(join(app, 'src', 'misuse.ts'));
  }
});

describe('the app in Chromium', () => {
  let server;
  let cached; // the same files, served as a static host serves a deployed app (all but HTML cached 10 min)
  let browser;
  let noSimd;

  before(async () => {
    const out = execFileSync(process.execPath, ['build.mjs', '--model', join(ROOT, 'models', 'deepconvnet-int8.safetensors')], { cwd: join(dir, 'app'), encoding: 'utf8' });
    sizes = JSON.parse(out.trim().split('\n').pop());
    console.log(`bundle: JS + SIMD128 wasm ${sizes.jsAndWasm.raw} bytes raw, ${sizes.jsAndWasm.gzip} gzip -9 (model not included: ${sizes.files['deepconvnet-int8.safetensors'].raw} bytes)`);
    server = await startServer({ build: false, root: join(dir, 'app', 'dist') });
    cached = await startServer({ build: false, root: join(dir, 'app', 'dist'), maxAge: 600 });
    browser = await launchBrowser();
    noSimd = await launchBrowser({ jsFlags: NO_SIMD });
  });

  after(async () => {
    await browser?.close();
    await noSimd?.close();
    await server?.stop();
    await cached?.stop();
  });

  async function firstPrediction(page) {
    await page.waitForFunction(() => window.firstPrediction || /^error/.test(document.querySelector('#detail').textContent), null, { timeout: 60_000 });
    const first = await page.evaluate(() => window.firstPrediction ?? document.querySelector('#detail').textContent);
    assert.equal(typeof first, 'object', `the app failed: ${first}`);
    return first;
  }

  /**
   * The median of 5 reloads from `cached`, whose responses let the browser reuse all but
   * index.html without asking (a reload then revalidates the page alone); checks each reading.
   */
  async function warmCached(inference) {
    const context = await browser.newContext();
    const g = guard(context, cached.origin);
    const page = g.watch(await context.newPage());
    await page.goto(`${cached.origin}/index.html${inference === 'main' ? '?inference=main' : ''}`);
    await firstPrediction(page);
    const before = g.requests.length;
    const warm = [];
    for (let i = 0; i < 5; i++) {
      await page.reload();
      const reading = await firstPrediction(page);
      assert.equal(reading.digit, 7);
      warm.push(reading.ms);
    }
    // The reloads asked the server for the page alone (the rest came from the cache).
    const asked = await page.evaluate(() => performance.getEntriesByType('resource').filter((r) => r.transferSize > 0).map((r) => r.name));
    assert.deepEqual(asked, [], 'a reload fetched more than the page');
    assert.ok(g.requests.length > before, 'no reload requests');
    assertClean(assert, g);
    await context.close();
    return warm.sort((a, b) => a - b)[2];
  }

  async function drawAndRead(page, name) {
    const box = await page.locator('#pad').boundingBox();
    const strokes = loadStrokes(name);
    const readings = await page.evaluate(() => window.readings);
    for (const stroke of strokes) {
      await page.mouse.move(box.x + stroke[0][0], box.y + stroke[0][1]);
      await page.mouse.down();
      for (const [x, y] of stroke.slice(1)) await page.mouse.move(box.x + x, box.y + y);
      await page.mouse.up();
    }
    // Each stroke's pointerup reads the pad once.
    await page.waitForFunction((n) => window.readings >= n, readings + strokes.length);
    return page.locator('#digit').textContent();
  }

  for (const inference of ['worker', 'main']) {
    test(`${inference} thread: reads the 7 it draws, then a 3 drawn with the mouse; cold and warm start`, async () => {
      const context = await browser.newContext();
      const g = guard(context, server.origin);
      const page = g.watch(await context.newPage());
      const url = `${server.origin}/index.html${inference === 'main' ? '?inference=main' : ''}`;
      await page.goto(url);
      const cold = await firstPrediction(page);
      assert.equal(cold.digit, 7);
      assert.equal(cold.build, 'simd128');
      assert.equal(cold.inference, inference);
      timings.push({ run: `${inference} thread, cold (new context)`, ms: cold.ms, build: cold.build });
      const warm = [];
      for (let i = 0; i < 5; i++) {
        await page.reload();
        warm.push((await firstPrediction(page)).ms);
      }
      warm.sort((a, b) => a - b);
      timings.push({ run: `${inference} thread, warm (median of 5)`, ms: warm[2], build: cold.build });
      assert.equal(await drawAndRead(page, 'digit-3'), '3');
      timings.push({ run: `${inference} thread, warm, cached 10 min`, ms: await warmCached(inference), build: cold.build });
      assert.ok(g.requests.some((u) => u.endsWith('/tinycnn_bg.wasm')), 'the SIMD128 build was fetched');
      assert.ok(!g.requests.some((u) => u.endsWith('/tinycnn_scalar_bg.wasm')), 'the scalar build was fetched too');
      assertClean(assert, g);
      await context.close();
    });
  }

  test("the browser's own floor: an empty page's module script, warm, cached 10 min", async () => {
    // What navigation → first script costs here with no app at all: the first prediction
    // cannot come sooner, so the app's own share is its time minus this.
    writeFileSync(join(dir, 'app', 'dist', 'empty.html'), '<!doctype html><meta charset="utf-8"><title>empty</title><link rel="icon" href="data:,">\n<script type="module">window.firstScript = performance.now();</script>\n');
    const context = await browser.newContext();
    const g = guard(context, cached.origin);
    const page = g.watch(await context.newPage());
    await page.goto(`${cached.origin}/empty.html`);
    const warm = [];
    for (let i = 0; i < 9; i++) {
      await page.reload();
      await page.waitForFunction(() => window.firstScript !== undefined);
      warm.push(await page.evaluate(() => window.firstScript));
    }
    assertClean(assert, g);
    await context.close();
    timings.push({ run: 'empty page, warm (median of 9)', ms: warm.sort((a, b) => a - b)[4], build: 'none' });
  });

  test('without SIMD128: the app loads the scalar build in its worker and on the main thread, and reads the same', async () => {
    for (const inference of ['worker', 'main']) {
      const context = await noSimd.newContext();
      const g = guard(context, server.origin);
      const page = g.watch(await context.newPage());
      assert.equal(await page.evaluate(() => WebAssembly.validate(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]))), false, `${NO_SIMD} left SIMD128 on`);
      await page.goto(`${server.origin}/index.html${inference === 'main' ? '?inference=main' : ''}`);
      const first = await firstPrediction(page);
      assert.equal(first.build, 'scalar');
      assert.equal(first.digit, 7);
      timings.push({ run: `${inference} thread, no SIMD128, cold`, ms: first.ms, build: first.build });
      assert.equal(await drawAndRead(page, 'digit-3'), '3');
      // index.html still preloads the SIMD128 build (what every current browser runs), unused here.
      assert.ok(g.requests.some((u) => u.endsWith('/tinycnn_scalar_bg.wasm')), 'the scalar build was not fetched');
      assertClean(assert, g);
      await context.close();
    }
  });

  test('without SIMD128: the digit page loads the scalar build and reads a digit', async () => {
    const pageServer = await startServer();
    try {
      const { context, page, guard: g } = await openPage(noSimd, pageServer);
      assert.equal(await page.evaluate(() => window.__tinycnn.wasmBuild), 'scalar');
      assert.equal(await page.evaluate(() => window.__tinycnn.backend), 'wasm');
      const strokes = loadStrokes('digit-3');
      await drawDigit(page, strokes);
      await settled(page, strokes.length);
      assert.equal(await shownReading(page), '3');
      assert.ok(g.requests.some((u) => u.endsWith('/pkg/tinycnn_scalar_bg.wasm')), 'the scalar build was not fetched');
      assertClean(assert, g);
      await context.close();
    } finally {
      await pageServer.stop();
    }
  });
});

describe('TinycnnWorker from pkg/ as it is (no bundler: the worker host starts from next to worker.js)', () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer({ build: false });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('the Web Worker example of docs/JAVASCRIPT.md runs as written and reads a 7', async () => {
    const doc = readFileSync(join(ROOT, 'docs', 'JAVASCRIPT.md'), 'utf8');
    const section = doc.slice(doc.indexOf('### In a Web Worker'));
    const example = section.match(/```js\n([\s\S]*?)```/)[1];
    // The one change: the bare specifier resolves to pkg/ (no bundler here), the model's path to the server root.
    const runnable = example.replace("'tinycnn/worker'", "'/pkg/worker.js'").replace("'models/", "'/models/")
      + '\nwindow.docResult = Array.from(probabilities);\n';
    const context = await browser.newContext();
    const g = guard(context, server.origin);
    const page = g.watch(await context.newPage());
    await page.goto(`${server.origin}/tests/e2e/blank.html`);
    await page.evaluate(() => {
      const canvas = Object.assign(document.createElement('canvas'), { width: 280, height: 280 });
      const ctx = canvas.getContext('2d');
      ctx.fillStyle = '#fff';
      ctx.fillRect(0, 0, 280, 280);
      ctx.lineWidth = 18;
      ctx.lineCap = ctx.lineJoin = 'round';
      ctx.beginPath();
      ctx.moveTo(80, 70);
      ctx.lineTo(200, 70);
      ctx.lineTo(120, 220);
      ctx.stroke();
      document.body.append(canvas);
    });
    await page.addScriptTag({ type: 'module', content: runnable });
    const p = await page.waitForFunction(() => window.docResult, null, { timeout: 30_000 }).then((h) => h.jsonValue());
    assert.equal(p.length, 10);
    assert.equal(p.indexOf(Math.max(...p)), 7);
    assertClean(assert, g);
    await context.close();
  });

  test('= the main thread bit for bit; every misuse rejects with an Error that says what; free() twice is harmless', async () => {
    const context = await browser.newContext();
    const g = guard(context, server.origin);
    const page = g.watch(await context.newPage());
    await page.goto(`${server.origin}/tests/e2e/blank.html`);
    const digits = testDigits(8);
    const r = await page.evaluate(async (pixels) => {
      const { TinycnnWorker } = await import('/pkg/worker.js');
      const tinycnn = await import('/pkg/index.js');
      const bytes = new Uint8Array(await (await fetch('/models/deepconvnet-int8.safetensors')).arrayBuffer());
      const tiny = new TinycnnWorker();
      const rejection = (p) => p.then(() => 'resolved', (e) => `${e instanceof Error ? e.name : typeof e}: ${e.message}`);
      const hello = await tiny.ready();
      const model = await tiny.loadModel(bytes);
      const ensemble = await tiny.loadEnsemble([model, await tiny.loadModel(bytes)]);
      const batch = new Uint8Array(pixels);
      const remote = await model.predictBatch(batch);
      const remoteEnsemble = await ensemble.predictBatch(batch);
      await tinycnn.default();
      const local = new tinycnn.Model(bytes);
      const same = (a, b) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
      const out = {
        hello,
        info: model.info.macs === local.info().macs && model.inputLength === 784 && model.classes === 10,
        sameBits: same(remote, local.predictBatch(batch)) && same(await model.logits(batch.subarray(0, 784)), local.logits(batch.subarray(0, 784))),
        ensembleRows: remoteEnsemble.length,
        errors: {
          badModel: await rejection(tiny.loadModel(new Uint8Array([1, 2, 3]))),
          shortInput: await rejection(model.predict(new Uint8Array(100))),
          floatInput: await rejection(model.predict(new Float32Array(784))),
          ensembleLogits: await rejection(ensemble.logits(batch.subarray(0, 784))),
          notRemote: await rejection(tiny.loadEnsemble([local])),
          blank: await rejection(tiny.preprocess(new Uint8ClampedArray(16), 2, 2)),
        },
      };
      await model.free();
      await model.free();
      out.errors.afterFree = await rejection(model.predict(batch.subarray(0, 784)));
      out.ensembleAfterMemberFreed = (await ensemble.predict(batch.subarray(0, 784))).length;
      const pending = model.predict(batch.subarray(0, 784)).catch(() => null);
      const slow = ensemble.predictBatch(batch);
      tiny.terminate();
      out.errors.terminated = await rejection(slow);
      out.errors.afterTerminate = await rejection(tiny.loadModel(bytes));
      await pending;
      local.free();
      return out;
    }, [...digits.pixels]);
    assert.equal(r.hello.build, 'simd128');
    assert.match(r.hello.version, /^\d+\.\d+\.\d+/);
    assert.ok(r.info, 'the remote model describes itself as the local one does');
    assert.ok(r.sameBits, 'the worker computes other probabilities than the main thread');
    assert.equal(r.ensembleRows, 80);
    assert.equal(r.ensembleAfterMemberFreed, 10, 'an ensemble outlives its members');
    assert.match(r.errors.badModel, /^Error: new Model: /);
    assert.match(r.errors.shortInput, /^Error: Model\.predict: input has 100 values, the model takes 784$/);
    assert.match(r.errors.floatInput, /^Error: Model\.predict: the pixels must be a Uint8Array or Uint8ClampedArray, got a Float32Array$/);
    assert.match(r.errors.ensembleLogits, /^Error: TinycnnWorker\.logits: an ensemble has no logits/);
    assert.match(r.errors.notRemote, /^Error: TinycnnWorker\.loadEnsemble: expected an array of RemoteModels/);
    assert.match(r.errors.blank, /^EmptyImageError: preprocess: /);
    assert.match(r.errors.afterFree, /^Error: RemoteModel\.predict: this model was freed/);
    assert.equal(r.errors.terminated, 'Error: TinycnnWorker: terminated');
    assert.equal(r.errors.afterTerminate, 'Error: TinycnnWorker: terminated');
    assertClean(assert, g);
    await context.close();
  });
});
