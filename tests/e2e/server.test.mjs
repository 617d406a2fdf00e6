// scripts/serve.mjs: the static server behind scripts/serve. No browser needed.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startServer } from './harness.mjs';

let server;
before(async () => {
  server = await startServer({ build: false, timeoutMs: 30_000 });
});
after(() => server?.stop());

function get(path, headers = {}, method = 'GET') {
  return new Promise((resolve, reject) => {
    const req = request(`${server.origin}${path}`, { method, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('binds 127.0.0.1 and prints the page URL', () => {
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/www\/$/);
});

test('serves the page with correct MIME types', async () => {
  const html = await get('/www/');
  assert.equal(html.status, 200);
  assert.match(html.headers['content-type'], /^text\/html/);
  assert.match(html.body.toString(), /<canvas id="canvas"/);
  for (const [path, type] of [
    ['/www/app.js', /^text\/javascript/],
    ['/www/style.css', /^text\/css/],
    ['/tests/e2e/strokes/digit-1.json', /^application\/json/],
  ]) {
    const r = await get(path);
    assert.equal(r.status, 200, path);
    assert.match(r.headers['content-type'], type, path);
  }
});

test('.wasm is application/wasm and .safetensors is binary', async () => {
  // Fixtures that exist in every checkout stand in for pkg/ and models/.
  const st = await get('/tests/fixtures/tiny-float.safetensors', {}, 'HEAD');
  assert.equal(st.status, 200);
  assert.equal(st.headers['content-type'], 'application/octet-stream');
  const wasm = await get('/pkg/tinycnn_bg.wasm', {}, 'HEAD');
  if (wasm.status === 200) assert.equal(wasm.headers['content-type'], 'application/wasm');
  else assert.equal(wasm.status, 404); // pkg/ not built in this checkout
});

test('the root redirects to the page', async () => {
  const r = await get('/');
  assert.equal(r.status, 302);
  assert.equal(r.headers.location, '/www/');
});

test('revalidation answers 304 with the same ETag', async () => {
  const first = await get('/www/app.js');
  assert.ok(first.headers.etag);
  assert.equal(first.headers['cache-control'], 'no-cache');
  const again = await get('/www/app.js', { 'If-None-Match': first.headers.etag });
  assert.equal(again.status, 304);
  assert.equal(again.body.length, 0);
});

test('refuses paths outside the repository and hidden files', async () => {
  for (const path of ['/../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/.git/HEAD', '/target/', '/tests/e2e/node_modules/playwright-core/package.json']) {
    const r = await get(path);
    assert.ok([403, 404].includes(r.status), `${path} → ${r.status}`);
  }
  const missing = await get('/www/nope.js');
  assert.equal(missing.status, 404);
  const post = await get('/www/', {}, 'POST');
  assert.equal(post.status, 405);
});
