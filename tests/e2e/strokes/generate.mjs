#!/usr/bin/env node
// Writes the stroke fixtures tests/e2e/strokes/*.json from the pen paths below.
//
//   node tests/e2e/strokes/generate.mjs
//
// Each digit is written the way a person writes it: the pen paths are a few
// key points per stroke (in a 280×280 box, y down), in drawing order. They are
// smoothed through a Catmull-Rom spline, sampled as a pointer would report
// them (~every 16 ms at a pen speed that slows in curves), with a little
// deterministic hand tremor. A fixture is an array of strokes; a stroke is an
// array of [x, y, t] points, t in milliseconds since the first pen-down.
// Number fixtures (number-*.json) are several digits side by side on the
// 840×280 pad, each with its own size, slant and tremor.

import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** Pen paths: digit → strokes → key points [x, y] in a 280×280 box. */
export const PATHS = {
  0: [[[150, 42], [112, 52], [88, 95], [82, 150], [96, 205], [135, 236], [176, 218], [196, 165], [194, 105], [178, 60], [146, 42], [128, 50]]],
  1: [[[146, 40], [144, 90], [141, 140], [138, 190], [136, 238]]],
  2: [[[88, 92], [104, 58], [142, 42], [182, 56], [194, 92], [178, 135], [138, 180], [92, 230], [140, 228], [200, 230]]],
  3: [[[86, 70], [120, 44], [165, 46], [190, 75], [178, 112], [140, 134], [125, 136], [150, 138], [188, 160], [196, 198], [170, 230], [124, 238], [84, 220]]],
  4: [
    [[124, 40], [110, 90], [92, 150], [88, 164], [140, 164], [204, 162]],
    [[176, 78], [174, 130], [172, 186], [170, 240]],
  ],
  5: [
    [[110, 44], [104, 90], [98, 134], [126, 118], [168, 124], [196, 160], [190, 206], [156, 234], [112, 234], [86, 214]],
    [[112, 44], [150, 44], [196, 42]],
  ],
  6: [[[182, 46], [144, 64], [112, 104], [94, 156], [98, 206], [132, 236], [172, 224], [190, 186], [172, 150], [132, 146], [102, 172]]],
  7: [[[78, 54], [130, 54], [198, 52], [176, 100], [150, 160], [128, 238]]],
  8: [[[184, 70], [160, 44], [122, 44], [94, 68], [104, 108], [140, 138], [182, 166], [192, 210], [160, 238], [116, 236], [90, 206], [104, 168], [140, 138], [176, 108], [188, 76], [176, 52]]],
  9: [
    [[182, 78], [160, 48], [122, 46], [94, 72], [96, 112], [124, 132], [162, 122], [184, 88], [184, 66], [182, 120], [176, 180], [170, 240]],
  ],
};

/** Numbers as sequences of digits, for number-*.json. */
export const NUMBERS = ['2026', '314'];

function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function catmullRom(p0, p1, p2, p3, u) {
  const u2 = u * u;
  const u3 = u2 * u;
  return [0, 1].map((k) =>
    0.5 * (2 * p1[k] + (-p0[k] + p2[k]) * u + (2 * p0[k] - 5 * p1[k] + 4 * p2[k] - p3[k]) * u2 + (-p0[k] + 3 * p1[k] - 3 * p2[k] + p3[k]) * u3),
  );
}

/** A dense polyline through the key points. */
function spline(keys) {
  if (keys.length < 2) return keys.map((p) => [...p]);
  const out = [];
  for (let i = 0; i < keys.length - 1; i++) {
    const p0 = keys[Math.max(0, i - 1)];
    const p1 = keys[i];
    const p2 = keys[i + 1];
    const p3 = keys[Math.min(keys.length - 1, i + 2)];
    const n = Math.max(2, Math.ceil(Math.hypot(p2[0] - p1[0], p2[1] - p1[1]) / 2));
    for (let j = 0; j < n; j++) out.push(catmullRom(p0, p1, p2, p3, j / n));
  }
  out.push([...keys[keys.length - 1]]);
  return out;
}

/**
 * Samples a dense path as pointer events: every ~16 ms, at a pen speed that
 * starts slow, is fastest on straight runs and slows in sharp turns.
 */
function sample(dense, rand, t0, opts) {
  const { tremor = 0.8, speed = 0.55 } = opts;
  const pts = [];
  let t = t0;
  let carry = 0;
  const total = dense.reduce((s, p, i) => (i ? s + Math.hypot(p[0] - dense[i - 1][0], p[1] - dense[i - 1][1]) : 0), 0);
  let walked = 0;
  const push = (p, tt) => pts.push([
    Math.round((p[0] + (rand() - 0.5) * 2 * tremor) * 10) / 10,
    Math.round((p[1] + (rand() - 0.5) * 2 * tremor) * 10) / 10,
    Math.round(tt),
  ]);
  push(dense[0], t);
  for (let i = 1; i < dense.length; i++) {
    const a = dense[i - 1];
    const b = dense[i];
    const seg = Math.hypot(b[0] - a[0], b[1] - a[1]);
    walked += seg;
    // Ease in and out along the stroke, slower where the path bends.
    const f = walked / Math.max(1, total);
    let v = speed * (0.45 + 0.55 * Math.sin(Math.PI * Math.min(1, Math.max(0, f))) ** 0.5);
    if (i + 1 < dense.length) {
      const c = dense[i + 1];
      const turn = Math.abs(Math.atan2(c[1] - b[1], c[0] - b[0]) - Math.atan2(b[1] - a[1], b[0] - a[0]));
      v *= 1 / (1 + 6 * Math.min(turn, 2 * Math.PI - turn));
    }
    const dt = seg / Math.max(0.08, v);
    t += dt;
    carry += dt;
    if (carry >= 16 || i === dense.length - 1) {
      push(b, t);
      carry = 0;
    }
  }
  return { pts, t };
}

/**
 * One digit's strokes, placed by an affine map of the 280 box:
 * scale s around the box centre, slant (x += slant · (140 − y)), then offset.
 */
export function writeDigit(digit, { seed = digit + 1, scale = 1, slant = 0, dx = 0, dy = 0, t0 = 0, tremor = 0.8, speed = 0.55, jitter = 0 } = {}) {
  const rand = rng(seed * 7919 + 17);
  const map = ([x, y]) => {
    // (No draws from rand without jitter: the older fixtures stay as they were.)
    const [jx, jy] = jitter ? [(rand() - 0.5) * 2 * jitter, (rand() - 0.5) * 2 * jitter] : [0, 0];
    const sx = 140 + (x + jx - 140) * scale;
    const sy = 140 + (y + jy - 140) * scale;
    return [sx + slant * (140 - sy) + dx, sy + dy];
  };
  const strokes = [];
  let t = t0;
  for (const keys of PATHS[digit]) {
    const { pts, t: end } = sample(spline(keys.map(map)), rand, t, { tremor, speed });
    strokes.push(pts);
    t = end + 180 + Math.round(rand() * 120); // pen up, move to the next stroke
  }
  return { strokes, t };
}

/** A number on the 840×280 pad, digits left to right with varied hands. */
export function writeNumber(text) {
  const rand = rng(text.split('').reduce((s, c) => s * 31 + c.charCodeAt(0), 7));
  const n = text.length;
  const pitch = Math.min(185, 760 / n);
  const start = 420 - (pitch * (n - 1)) / 2;
  const strokes = [];
  let t = 0;
  text.split('').forEach((ch, i) => {
    const d = Number(ch);
    const { strokes: s, t: end } = writeDigit(d, {
      seed: 100 + i * 13 + d,
      scale: 0.78 + rand() * 0.1,
      slant: (rand() - 0.4) * 0.12,
      dx: start + i * pitch - 140 + (rand() - 0.5) * 10,
      dy: (rand() - 0.5) * 14,
      t0: t,
    });
    strokes.push(...s);
    t = end + 250;
  });
  return strokes;
}

/** The pen's width on the pad (www/draw.js STROKE_WIDTH): ink reaches half of it past the points. */
const PEN = 22;

function inkBox(strokes) {
  const xs = strokes.flat().map((p) => p[0]);
  const ys = strokes.flat().map((p) => p[1]);
  return { x0: Math.min(...xs) - PEN / 2, x1: Math.max(...xs) + PEN / 2, y0: Math.min(...ys) - PEN / 2, y1: Math.max(...ys) + PEN / 2 };
}

const shift = (strokes, dx, dy) => strokes.map((s) => s.map(([x, y, t]) => [Math.round((x + dx) * 10) / 10, Math.round((y + dy) * 10) / 10, t]));

/**
 * Digits written as people do when they hurry: each digit's ink box starts
 * `overlap` of its width before the previous one's ends (0: just touching),
 * with per-digit sizes (`scales`, of the 280 box; `align` 'bottom' keeps a
 * common baseline), placed from (`left`, `top`) or centred on the 840×280 pad.
 */
export function writeRow(text, { overlap = 0, scales, seed = 1, tremor = 0.8, speed = 0.55, jitter = 0, slant = 0.12, left, top, align = 'middle' } = {}) {
  const rand = rng(seed * 104729 + text.length);
  const digits = text.split('').map(Number);
  const written = [];
  let t = 0;
  digits.forEach((d, i) => {
    const scale = scales ? scales[i % scales.length] : 0.78 + rand() * 0.1;
    const { strokes, t: end } = writeDigit(d, { seed: seed * 31 + i * 13 + d, scale, slant: (rand() - 0.4) * slant, t0: t, tremor, speed, jitter });
    written.push(strokes);
    t = end + 150 + Math.round(rand() * 150);
  });
  // Left to right, each box overlapping the previous one by `overlap` of its own width.
  const placed = [];
  let right = 0;
  let bottom = -Infinity;
  for (const strokes of written) bottom = Math.max(bottom, inkBox(strokes).y1 - inkBox(strokes).y0);
  for (const strokes of written) {
    const box = inkBox(strokes);
    const width = box.x1 - box.x0;
    const x = placed.length ? right - overlap * width : 0;
    const dy = align === 'bottom' ? bottom - (box.y1 - box.y0) : (bottom - (box.y1 - box.y0)) / 2;
    const s = shift(strokes, x - box.x0, dy - box.y0);
    right = x + width;
    placed.push(s);
  }
  const all = placed.flat();
  const box = inkBox(all);
  const dx = left ?? 420 - (box.x1 - box.x0) / 2;
  const dy = top ?? 140 - (box.y1 - box.y0) / 2;
  return shift(all, dx - box.x0, dy - box.y0);
}

/**
 * Stroke sets of issue #16: touching and overlapping numbers, small digits in
 * the pad's corners (a third of its height), mixed sizes, fast sloppy hands.
 */
export const HARD = {
  'touching-90': () => writeRow('90', { overlap: 0.05, seed: 2 }),
  'touching-314': () => writeRow('314', { overlap: 0, seed: 3 }),
  'touching-1789': () => writeRow('1789', { overlap: 0.1, seed: 4 }),
  'touching-45712': () => writeRow('45712', { overlap: 0.08, seed: 5 }),
  'touching-24681357': () => writeRow('24681357', { overlap: 0.06, seed: 6, scales: [0.62, 0.66, 0.64] }),
  'corner-top-left-47': () => writeRow('47', { scales: [0.33], seed: 7, left: 12, top: 8 }),
  'corner-top-right-85': () => writeRow('85', { scales: [0.33], seed: 8, left: 840 - 12 - 2 * (0.33 * 130 + PEN), top: 8 }),
  'corner-bottom-left-19': () => writeRow('19', { scales: [0.33], seed: 9, left: 12, top: 280 - 8 - (0.33 * 200 + PEN) }),
  'corner-bottom-right-03': () => writeRow('03', { scales: [0.33], seed: 10, left: 840 - 12 - 2 * (0.33 * 130 + PEN), top: 280 - 8 - (0.33 * 200 + PEN) }),
  'mixed-sizes-5039': () => writeRow('5039', { overlap: -0.15, scales: [0.95, 0.45, 0.7, 0.55], seed: 11, align: 'bottom' }),
  'sloppy-6284': () => writeRow('6284', { overlap: -0.05, seed: 12, tremor: 2.5, speed: 1.4, jitter: 9, slant: 0.4 }),
  'sloppy-1357': () => writeRow('1357', { overlap: -0.05, seed: 13, tremor: 2.5, speed: 1.4, jitter: 9, slant: 0.4 }),
};

function save(name, strokes) {
  const text = '[\n' + strokes.map((s) => '  ' + JSON.stringify(s)).join(',\n') + '\n]\n';
  writeFileSync(join(here, name), text);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (let d = 0; d <= 9; d++) save(`digit-${d}.json`, writeDigit(d).strokes);
  for (const num of NUMBERS) save(`number-${num}.json`, writeNumber(num));
  for (const [name, write] of Object.entries(HARD)) save(`${name}.json`, write());
  console.log(`wrote ${10 + NUMBERS.length + Object.keys(HARD).length} stroke files to ${here}`);
}
