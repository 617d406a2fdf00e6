// The relaxed-SIMD browser package (pkg/relaxed-web, `tinycnn/relaxed-web`) in
// headless Chromium against the SIMD128 package pkg/, bit for bit: Node 22 checks
// pkg/relaxed (tests/node/relaxed.test.mjs); this is the browser's engine.
//
//   node --test tests/e2e/
//
// The digits: harness.mjs's testDigits (the first 500 MNIST test images when
// data/mnist is present). A Chromium without relaxed SIMD fails to instantiate
// the package: a test failure, not a skip.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, assertClean, guard, launchBrowser, startServer, testDigits } from './harness.mjs';

const IMAGES = 500;
const MODELS = ['deepconvnet-int8', 'resnet-int8', 'inception-int8'];

describe('relaxed-SIMD package (pkg/relaxed-web) in headless Chromium', () => {
  let server;
  let browser;
  let g;
  let page;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    const context = await browser.newContext();
    g = guard(context, server.origin);
    page = g.watch(await context.newPage());
    await page.goto(`${server.origin}/tests/e2e/blank.html`);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('the package is relaxed-SIMD code and Chromium runs it', async () => {
    const wasm = readFileSync(join(ROOT, 'pkg', 'relaxed-web', 'tinycnn_bg.wasm'));
    const out = await page.evaluate(async (b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      // i32x4.relaxed_dot_i8x16_i7x16_add_s is 0xfd 0x93 0x02: present in the package's code.
      let dots = 0;
      for (let i = 0; i + 2 < bytes.length; i++) if (bytes[i] === 0xfd && bytes[i + 1] === 0x93 && bytes[i + 2] === 0x02) dots++;
      const relaxed = await import('/pkg/relaxed-web/tinycnn.js');
      await relaxed.default();
      return { validates: WebAssembly.validate(bytes), dots, version: relaxed.version() };
    }, wasm.toString('base64'));
    assert.ok(out.validates, 'Chromium does not validate the relaxed package');
    assert.ok(out.dots > 0, 'no relaxed dot-product instruction in pkg/relaxed-web');
    assert.match(out.version, /^\d+\.\d+\.\d+/);
  });

  for (const name of MODELS) {
    test(`${name}: logits equal the SIMD128 package's bit for bit`, async () => {
      const { source, pixels } = testDigits(IMAGES);
      const out = await page.evaluate(
        async ({ url, pixelsB64 }) => {
          const pixels = Uint8Array.from(atob(pixelsB64), (c) => c.charCodeAt(0));
          const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
          const simd = await import('/pkg/tinycnn.js');
          await simd.default();
          const relaxed = await import('/pkg/relaxed-web/tinycnn.js');
          await relaxed.default();
          const u32 = (f) => Array.from(new Uint32Array(f.buffer, f.byteOffset, f.length));
          const a = new simd.Model(bytes);
          const b = new relaxed.Model(bytes);
          const result = { simd: u32(a.logitsBatch(pixels)), relaxed: u32(b.logitsBatch(pixels)) };
          a.free();
          b.free();
          return result;
        },
        { url: `/models/${name}.safetensors`, pixelsB64: Buffer.from(pixels).toString('base64') },
      );
      assert.equal(out.relaxed.length, IMAGES * 10);
      assert.ok(out.simd.some((v) => v !== 0), 'the SIMD128 logits are all zero');
      for (let i = 0; i < IMAGES; i++) {
        const row = (a) => a.slice(i * 10, i * 10 + 10);
        assert.deepEqual(row(out.relaxed), row(out.simd), `${source}: logits of image ${i} differ`);
      }
      assertClean(assert, g);
    });
  }
});
