// The malformed-model corpus (tests/fixtures/malformed/, scripts/gen-malformed)
// through the JS API: each file makes `new Model` throw a JS Error whose message
// contains the manifest's text (the same check as tests/malformed_models.rs), and
// the module keeps working afterwards.
//
//   scripts/build-wasm && node --test tests/node/
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const pkgEntry = join(root, 'pkg/node/index.cjs'); // the package's require() entry
const dir = join(root, 'tests/fixtures/malformed');
const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));

let t;
before(() => {
  assert.ok(existsSync(pkgEntry), `${pkgEntry} is missing: run scripts/build-wasm first`);
  t = createRequire(import.meta.url)(pkgEntry);
});

/** A valid model still loads and predicts (the module was not poisoned). */
function stillWorks() {
  const model = new t.Model(readFileSync(join(root, 'tests/fixtures/small-int8.safetensors')));
  const p = model.predict(new Uint8Array(36).fill(200));
  assert.equal(p.length, 3);
  assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-5);
  model.free();
}

test(`${manifest.length} malformed model files each throw their Error`, () => {
  assert.ok(manifest.length >= 30);
  for (const { file, error, message } of manifest) {
    const bytes = readFileSync(join(dir, file));
    for (const arg of [bytes, bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)]) {
      assert.throws(() => new t.Model(arg), (e) => {
        assert.ok(e instanceof Error, `${file}: threw ${e}, not an Error`);
        assert.ok(e.message.startsWith('new Model: '), `${file}: ${e.message}`);
        assert.ok(e.message.includes(message), `${file} (${error}): "${e.message}" lacks "${message}"`);
        return true;
      }, `${file} loaded`);
    }
  }
  stillWorks();
});

test('the module keeps working after every malformed file', () => {
  for (const { file } of manifest) {
    try { new t.Model(readFileSync(join(dir, file))); } catch { /* expected */ }
    stillWorks();
  }
});
