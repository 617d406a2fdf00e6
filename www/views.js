// Small DOM/canvas helpers for the result panels.

/** Paints 8-bit grayscale pixels (row-major, w×h) onto a canvas of that size. */
export function paintGray(canvas, pixels, w = 28, h = 28) {
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(w, h);
  for (let i = 0; i < w * h; i++) {
    const v = pixels[i];
    img.data[i * 4] = v;
    img.data[i * 4 + 1] = v;
    img.data[i * 4 + 2] = v;
    img.data[i * 4 + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

/** Paints one float map, normalised to its own min..max (flat maps are black). */
export function paintMap(canvas, data, offset, w, h) {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < w * h; i++) {
    const v = data[offset + i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const range = hi - lo;
  const px = new Uint8Array(w * h);
  if (range > 1e-12 && Number.isFinite(range)) {
    for (let i = 0; i < w * h; i++) px[i] = Math.round(((data[offset + i] - lo) / range) * 255);
  }
  paintGray(canvas, px, w, h);
  return { min: lo, max: hi };
}

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

export function formatMs(ms) {
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  return `${Math.round(ms)} ms`;
}

export function formatCount(n) {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e4) return `${Math.round(n / 1e3)} k`;
  return n.toLocaleString('en-US');
}

export function formatBytes(n) {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

export function percent(p) {
  const v = p * 100;
  if (v >= 99.95) return '100%';
  if (v >= 10) return `${v.toFixed(1)}%`;
  if (v >= 0.05) return `${v.toFixed(1)}%`;
  return v > 0 ? '<0.1%' : '0%';
}
