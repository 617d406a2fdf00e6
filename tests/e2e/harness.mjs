// Shared machinery of the end-to-end tests: the server, the browser, a guard
// that records console errors and every request, and a pen that replays
// stroke fixtures as real pointer events. Not a test file itself.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SCREENSHOTS = join(ROOT, 'screenshots');
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** Logical size of the drawing pad on a wide screen (on a phone it is 420 wide). */
export const PAD = { width: 840, height: 280 };

/** The pad's logical size as the page reports it. */
export async function padSize(page) {
  return page.locator('#canvas').evaluate((c) => ({
    width: Number(c.dataset.logicalWidth),
    height: Number(c.dataset.logicalHeight),
  }));
}

/**
 * Starts `scripts/serve 0` (which builds pkg/ when missing or stale) and
 * resolves with { url, origin, stop } once it prints its URL. `build: false`
 * serves without building; `root` (with build: false) serves that directory instead;
 * `maxAge` (seconds, with build: false) lets the browser keep all but HTML unasked (serve.mjs --max-age).
 */
export function startServer({ build = true, root = null, maxAge = 0, timeoutMs = 20 * 60_000 } = {}) {
  const cmd = build ? join(ROOT, 'scripts', 'serve') : process.execPath;
  const options = [...(root ? ['--root', root] : []), ...(maxAge ? ['--max-age', String(maxAge)] : [])];
  const args = build ? ['0'] : [join(ROOT, 'scripts', 'serve.mjs'), '0', '--quiet', ...options];
  const child = spawn(cmd, args, {
    cwd: ROOT,
    env: { ...process.env, SERVE_QUIET: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Never leave the server behind, even if this test process dies.
  const killChild = () => child.exitCode === null && child.kill('SIGTERM');
  process.once('exit', killChild);
  let log = '';
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new Error(`server did not start within ${timeoutMs} ms:\n${log}`));
    }, timeoutMs);
    const onData = (chunk) => {
      log += chunk;
      const m = /(http:\/\/127\.0\.0\.1:(\d+))\/www\//.exec(log);
      if (m) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        child.stdout.resume();
        const stop = () =>
          new Promise((done) => {
            if (child.exitCode !== null) return done();
            child.once('exit', () => done());
            child.kill('SIGTERM');
          });
        resolvePromise({ url: `${m[1]}/www/`, origin: m[1], port: Number(m[2]), stop, child });
      }
    };
    child.stdout.setEncoding('utf8').on('data', onData);
    child.stderr.setEncoding('utf8').on('data', (c) => {
      log += c;
      if (process.env.E2E_VERBOSE) process.stderr.write(c);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before it served:\n${log}`));
    });
  });
}

/**
 * Headless Chromium. `webgpu: true` adds --enable-unsafe-webgpu: Chromium's
 * WebGPU on Linux (Dawn), which without a GPU (and with --disable-gpu) gives
 * the SwiftShader software adapter; without the flag navigator.gpu exists but
 * requestAdapter() resolves to null. `jsFlags` go to V8 (e.g. '--no-enable-sse4-1':
 * no SIMD128 in pages and workers alike).
 */
export const PIXELS = 784;
const MNIST_IMAGES = join(ROOT, 'data', 'mnist', 't10k-images-idx3-ubyte');

/**
 * `count` × 784 digit bytes and where they come from: the first MNIST test digits
 * (data/mnist, scripts/fetch-mnist) when present, else deterministic pseudo-random images.
 */
export function testDigits(count) {
  if (existsSync(MNIST_IMAGES)) {
    const file = readFileSync(MNIST_IMAGES);
    if (file.readUInt32BE(0) !== 0x803 || file.readUInt32BE(4) < count) {
      throw new Error(`${MNIST_IMAGES}: not an idx3 file of at least ${count} images`);
    }
    return { source: `the first ${count} MNIST test digits`, pixels: file.subarray(16, 16 + count * PIXELS) };
  }
  const pixels = Buffer.alloc(count * PIXELS);
  let x = 0x12345678;
  for (let i = 0; i < pixels.length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    pixels[i] = x >>> 24 > 160 ? x >>> 16 : 0; // sparse "ink"
  }
  return { source: `${count} pseudo-random images (no MNIST data)`, pixels };
}

export async function launchBrowser({ webgpu = false, jsFlags = null } = {}) {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: install Debian's chromium (scripts/setup)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      ...(webgpu ? ['--enable-unsafe-webgpu'] : []),
      ...(jsFlags ? [`--js-flags=${jsFlags}`] : []),
      '--headless=new',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

/**
 * Records what a browser context does: console errors, page errors, failed
 * requests (network failures and HTTP ≥ 400) and any request that leaves the
 * server's origin.
 */
export function guard(context, origin) {
  const g = { consoleErrors: [], pageErrors: [], failed: [], foreign: [], requests: [] };
  const allowed = new URL(origin);
  context.on('request', (req) => {
    const url = req.url();
    g.requests.push(url);
    if (/^(data|blob|about):/.test(url)) return;
    const u = new URL(url);
    if (u.hostname !== '127.0.0.1' || u.port !== allowed.port) g.foreign.push(url);
  });
  context.on('requestfailed', (req) => g.failed.push(`${req.url()} (${req.failure()?.errorText})`));
  context.on('response', (res) => {
    if (res.status() >= 400) g.failed.push(`${res.url()} (HTTP ${res.status()})`);
  });
  g.watch = (page) => {
    page.on('console', (msg) => {
      if (msg.type() === 'error') g.consoleErrors.push(msg.text());
    });
    page.on('pageerror', (err) => g.pageErrors.push(String(err)));
    return page;
  };
  return g;
}

export function assertClean(assert, g) {
  assert.deepEqual(g.consoleErrors, [], 'console errors');
  assert.deepEqual(g.pageErrors, [], 'uncaught page errors');
  assert.deepEqual(g.failed, [], 'failed requests');
  assert.deepEqual(g.foreign, [], 'requests leaving 127.0.0.1');
}

export function loadStrokes(name) {
  return JSON.parse(readFileSync(join(ROOT, 'tests', 'e2e', 'strokes', `${name}.json`), 'utf8'));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Replays strokes ([[x, y, t], ...] per stroke, in pad coordinates) with real
 * mouse events, keeping to the recorded timing (never faster than recorded).
 * `offsetX` places a 280-wide single-digit drawing on the 840-wide pad.
 */
export async function drawStrokes(page, strokes, { offsetX = 0, offsetY = 0 } = {}) {
  const box = await page.locator('#canvas').boundingBox();
  const pad = await padSize(page);
  const sx = box.width / pad.width;
  const sy = box.height / pad.height;
  const at = ([x, y]) => [box.x + (x + offsetX) * sx, box.y + (y + offsetY) * sy];
  const start = Date.now();
  const t0 = strokes[0]?.[0]?.[2] ?? 0;
  const waitFor = async (t) => {
    const ahead = t - t0 - (Date.now() - start);
    if (ahead > 0) await sleep(ahead);
  };
  for (const stroke of strokes) {
    const [x0, y0] = at(stroke[0]);
    await page.mouse.move(x0, y0);
    await waitFor(stroke[0][2]);
    await page.mouse.down();
    for (const p of stroke.slice(1)) {
      await waitFor(p[2]);
      const [x, y] = at(p);
      await page.mouse.move(x, y);
    }
    await page.mouse.up();
  }
}

/** Draws a single-digit fixture (a 280×280 box) in the middle of the pad. */
export async function drawDigit(page, strokes) {
  const pad = await padSize(page);
  return drawStrokes(page, strokes, { offsetX: (pad.width - 280) / 2 });
}

/** Waits for the page's result after the last stroke ended. */
export async function settled(page, strokes) {
  await page.waitForFunction(
    (n) => {
      const r = window.__tinycnn?.lastResult;
      return r && r.final && r.strokes === n;
    },
    strokes,
    { timeout: 10_000 },
  );
  return page.evaluate(() => window.__tinycnn.lastResult);
}

/** The number shown on the page (visible DOM text, whitespace dropped). */
export async function shownReading(page) {
  return ((await page.locator('#reading').textContent()) ?? '').replace(/\s+/g, '');
}

export function screenshotPath(name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  return join(SCREENSHOTS, name);
}

export async function openPage(browser, server, { query = '', viewport = { width: 1280, height: 900 }, colorScheme = 'light' } = {}) {
  const context = await browser.newContext({ viewport, colorScheme, deviceScaleFactor: 1 });
  const g = guard(context, server.origin);
  const page = g.watch(await context.newPage());
  await page.goto(server.url + query);
  await page.evaluate(() => window.tinycnnReady.then(() => true));
  const timings = await page.evaluate(() => ({ ...window.__tinycnn.timings }));
  return { context, page, guard: g, timings };
}

/**
 * A valid tinycnn float model file (docs/FORMAT.md): flatten → dense → softmax,
 * for an input of channels×height×width. Small, deterministic weights.
 */
export function makeDenseModel({ channels = 1, height = 28, width = 28, classes = 10 } = {}) {
  const inputs = channels * height * width;
  const graph = {
    format: 1,
    dtype: 'float',
    input: { channels, height, width },
    nodes: [
      { name: 'flatten', op: 'flatten', inputs: ['input'] },
      { name: 'fc', op: 'dense', inputs: ['flatten'] },
      { name: 'softmax', op: 'softmax', inputs: ['fc'] },
    ],
    output: 'softmax',
  };
  const weight = new Float32Array(classes * inputs).map((_, i) => Math.sin(i) * 0.01);
  const bias = new Float32Array(classes);
  const header = {
    __metadata__: { tinycnn: JSON.stringify(graph) },
    'fc.weight': { dtype: 'F32', shape: [classes, inputs], data_offsets: [0, weight.byteLength] },
    'fc.bias': { dtype: 'F32', shape: [classes], data_offsets: [weight.byteLength, weight.byteLength + bias.byteLength] },
  };
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([len, Buffer.from(json), Buffer.from(weight.buffer), Buffer.from(bias.buffer)]);
}

export { sleep };
