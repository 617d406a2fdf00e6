import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, launchBrowser, startServer } from './harness.mjs';
const APP = join(ROOT, 'examples', 'web-app');
const dir = process.env.PROBE_DIR ?? mkdtempSync(join(tmpdir(), 'probe-'));
const app = join(dir, 'app');
if (!process.env.PROBE_DIR) {
  const [packed] = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: join(ROOT, 'pkg'), encoding: 'utf8' }));
  for (const f of ['package.json', 'tsconfig.json', 'index.html', 'build.mjs', 'src']) cpSync(join(APP, f), join(app, f), { recursive: true });
  const m = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8'));
  m.dependencies.tinycnn = `file:${join(dir, packed.filename)}`;
  writeFileSync(join(app, 'package.json'), JSON.stringify(m, null, 2));
  execFileSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: app });
}
for (const f of ['index.html', 'src']) cpSync(join(APP, f), join(app, f), { recursive: true });
execFileSync(process.execPath, ['build.mjs', '--model', join(ROOT, 'models', 'deepconvnet-int8.safetensors')], { cwd: app, encoding: 'utf8' });
console.log('dir', dir);
const cached = await startServer({ build: false, root: join(app, 'dist'), maxAge: 600 });
const browser = await launchBrowser();
for (const inference of ['main', 'worker']) {
const context = await browser.newContext();
const page = await context.newPage();
await page.goto(`${cached.origin}/index.html${inference === 'main' ? '?inference=main' : ''}`);
await page.waitForFunction(() => window.firstPrediction);
const rows = [];
for (let i = 0; i < 7; i++) {
  if (process.env.WAIT) await page.waitForTimeout(+process.env.WAIT);
  await page.reload();
  await page.waitForFunction(() => window.firstPrediction);
  rows.push(await page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const o = { first: window.firstPrediction.ms, respEnd: nav.responseEnd, domInteractive: nav.domInteractive };
    for (const m of performance.getEntriesByType('mark')) o[m.name] = m.startTime;
    for (const r of performance.getEntriesByType('resource')) o[r.name.split('/').pop()] = `${r.startTime.toFixed(1)}-${r.responseEnd.toFixed(1)}`;
    return o;
  }));
}
console.log(inference); console.table(rows);
await context.close();
}
await browser.close(); await cached.stop();
