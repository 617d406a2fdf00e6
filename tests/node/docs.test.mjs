// The Node example of docs/JAVASCRIPT.md works as written: it is run against
// pkg/ (scripts/build-wasm) installed as `tinycnn`, importing it by name, so
// the package's "exports" map is tested too. Needs models/deepconvnet-int8.safetensors
// and data/mnist (scripts/fetch-mnist).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

test('the "Use from JavaScript" example of docs/JAVASCRIPT.md runs', () => {
  assert.ok(existsSync(join(root, 'pkg/package.json')), 'pkg/ is missing: run scripts/build-wasm first');
  assert.ok(existsSync(join(root, 'data/mnist/t10k-images-idx3-ubyte')), 'data/mnist is missing: run scripts/fetch-mnist');
  assert.ok(existsSync(join(root, 'models/deepconvnet-int8.safetensors')), 'models/deepconvnet-int8.safetensors is missing');
  const doc = readFileSync(join(root, 'docs/JAVASCRIPT.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Use from JavaScript'));
  const example = section.match(/```js\n([\s\S]*?)```/)[1];
  // The README shows the same example; it must not drift from the tested one.
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const readmeSection = readme.slice(readme.indexOf('## Use from JavaScript'));
  assert.equal(readmeSection.match(/```js\n([\s\S]*?)```/)[1], example, 'README.md and docs/JAVASCRIPT.md examples differ');
  assert.ok(example.split('\n').filter((l) => l.trim()).length <= 10, 'the example stays ten lines');

  const dir = mkdtempSync(join(tmpdir(), 'tinycnn-docs-'));
  try {
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(join(root, 'pkg'), join(dir, 'node_modules/tinycnn'), 'dir');
    writeFileSync(join(dir, 'example.mjs'), example);
    const out = execFileSync(process.execPath, [join(dir, 'example.mjs')], { cwd: root, encoding: 'utf8' });
    // The first MNIST test digit is a 7.
    assert.match(out, /^a 7, \d+\.\d% sure\n$/);
  } finally {
    rmSync(dir, { recursive: true });
  }
});
