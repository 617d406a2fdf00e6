#!/usr/bin/env node
// A small static file server for the digit page: serves the repository root
// (so /www/, /pkg/ and /models/ resolve) on 127.0.0.1 only, with correct MIME
// types (application/wasm for streaming compilation) and cache revalidation
// (ETag / Last-Modified → 304), so a reload uses the browser cache but an
// edited file is picked up at once. No dependencies: node:http only.
//
//   node scripts/serve.mjs [PORT] [--root DIR] [--max-age SECONDS] [--quiet]
//
// --max-age lets the browser keep every file but HTML that long without asking
// (`Cache-Control: max-age`, as static hosts serve a deployed app: GitHub Pages
// gives 600 s); HTML is always revalidated, so a new deploy shows on reload.
//
// PORT 0 picks a free port. The first line printed is always
// "tinycnn: serving <root> at http://127.0.0.1:<port>/www/"; tests parse it.
// Normally started through scripts/serve, which builds pkg/ first.

import { createServer } from 'node:http';
import { createReadStream, existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.safetensors': 'application/octet-stream',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.webmanifest': 'application/manifest+json',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
};

function parseArgs(argv) {
  const opts = { port: 8080, root: resolve(fileURLToPath(import.meta.url), '..', '..'), quiet: false, maxAge: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--root') opts.root = resolve(argv[++i]);
    else if (a === '--quiet') opts.quiet = true;
    else if (a === '--max-age' && /^\d+$/.test(argv[i + 1] ?? '')) opts.maxAge = Number(argv[++i]);
    else if (a === '-h' || a === '--help') {
      console.log('usage: node scripts/serve.mjs [PORT] [--root DIR] [--max-age SECONDS] [--quiet]');
      process.exit(0);
    } else if (/^\d+$/.test(a)) opts.port = Number(a);
    else {
      console.error(`serve.mjs: unknown argument ${a}`);
      process.exit(2);
    }
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const root = opts.root;

function send(res, status, body, headers = {}) {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...headers });
  res.end(body);
}

// The repository root redirects / to the page; another --root (a built app) serves its own index.html.
const servesPage = existsSync(join(root, 'www', 'index.html'));

async function handle(req, res) {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return send(res, 405, 'method not allowed\n', { Allow: 'GET, HEAD' });
  }
  let pathname;
  try {
    pathname = decodeURIComponent(new URL(req.url, 'http://127.0.0.1').pathname);
  } catch {
    return send(res, 400, 'bad request\n');
  }
  if ((pathname === '/' || pathname === '/index.html') && servesPage) {
    return send(res, 302, 'see /www/\n', { Location: '/www/' });
  }
  if (pathname.includes('\0')) return send(res, 400, 'bad request\n');
  const file = normalize(join(root, pathname));
  if (file !== root && !file.startsWith(root + sep)) return send(res, 403, 'forbidden\n');
  // Never hand out the repository's internals.
  const rel = file.slice(root.length + 1).split(sep);
  if (rel.some((p) => p.startsWith('.') && p !== '.well-known') || rel[0] === 'target' || rel.includes('node_modules')) {
    return send(res, 404, 'not found\n');
  }

  let path = file;
  let st;
  try {
    st = await stat(path);
    if (st.isDirectory()) {
      if (!pathname.endsWith('/')) return send(res, 301, 'moved\n', { Location: pathname + '/' });
      path = join(path, 'index.html');
      st = await stat(path);
    }
  } catch {
    return send(res, 404, `not found: ${pathname}\n`);
  }
  if (!st.isFile()) return send(res, 404, `not found: ${pathname}\n`);

  const etag = `W/"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
  const headers = {
    'Content-Type': MIME[extname(path).toLowerCase()] ?? 'application/octet-stream',
    // By default cache, but revalidate: edits show up on reload.
    'Cache-Control': opts.maxAge && extname(path).toLowerCase() !== '.html' ? `max-age=${opts.maxAge}` : 'no-cache',
    ETag: etag,
    'Last-Modified': st.mtime.toUTCString(),
    'X-Content-Type-Options': 'nosniff',
  };
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, headers);
    return res.end();
  }
  headers['Content-Length'] = st.size;
  res.writeHead(200, headers);
  if (req.method === 'HEAD') return res.end();
  const stream = createReadStream(path);
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}

const server = createServer((req, res) => {
  handle(req, res)
    .catch((e) => send(res, 500, `internal error: ${e?.message ?? e}\n`))
    .finally(() => {
      if (!opts.quiet) console.log(`${req.method} ${req.url} ${res.statusCode}`);
    });
});

server.on('error', (e) => {
  console.error(`serve.mjs: ${e.code === 'EADDRINUSE' ? `port ${opts.port} is in use` : e.message}`);
  process.exit(1);
});

server.listen(opts.port, '127.0.0.1', () => {
  const { port } = server.address();
  console.log(`tinycnn: serving ${root} at http://127.0.0.1:${port}/www/`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}
