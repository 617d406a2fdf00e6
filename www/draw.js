// The drawing pad: pointer events (mouse, touch, pen) → a list of strokes in
// the canvas's logical coordinates, redrawn from that list (so Undo is just
// "drop the last stroke and redraw").
//
// The logical size is 280 px high (the canvas's height attribute) and as wide
// as the element's CSS aspect ratio makes it (data-logical-width), so strokes
// keep the same thickness relative to a digit on every screen.
// The visible canvas follows the page's colours and the screen's pixel ratio;
// `renderInk()` draws the same strokes at logical size as white ink on black,
// the MNIST convention that preprocess()/segment() expect.

/** Ink width in logical pixels: an MNIST digit is ~20 px tall with ~2.5 px
 * strokes; a digit drawn ~200 px tall on the 280 px pad gets the same ratio. */
export const STROKE_WIDTH = 22;
/** The digit height STROKE_WIDTH is meant for (logical pixels). */
const DIGIT_HEIGHT = 200;

export class StrokePad {
  /**
   * @param {HTMLCanvasElement} canvas  its height attribute is the logical height
   * @param {{onChange?: (pad: StrokePad, phase: 'start'|'move'|'end'|'edit') => void}} opts
   */
  constructor(canvas, opts = {}) {
    this.canvas = canvas;
    this.width = canvas.width;
    this.height = canvas.height;
    this.onChange = opts.onChange ?? (() => {});
    /** @type {{points: number[][]}[]} finished strokes plus the one in progress */
    this.strokes = [];
    this.active = null; // {pointerId, stroke}
    this.dpr = 0;
    this.colors = { paper: '#fff', ink: '#111', guide: '#ddd' };
    this.ctx = canvas.getContext('2d');
    this.inkCanvas = document.createElement('canvas');
    this.inkCanvas.width = this.width;
    this.inkCanvas.height = this.height;
    this.inkCtx = this.inkCanvas.getContext('2d', { willReadFrequently: true });
    this.pending = false;
    canvas.dataset.logicalWidth = String(this.width);
    canvas.dataset.logicalHeight = String(this.height);

    canvas.addEventListener('pointerdown', (e) => this.#down(e));
    canvas.addEventListener('pointermove', (e) => this.#move(e));
    canvas.addEventListener('pointerup', (e) => this.#up(e));
    canvas.addEventListener('pointercancel', (e) => this.#up(e));
    canvas.addEventListener('lostpointercapture', (e) => this.#up(e));
    // No context menu on a long press (CSS touch-action: none stops scrolling and zooming).
    canvas.addEventListener('contextmenu', (e) => e.preventDefault());

    new ResizeObserver(() => this.#resize()).observe(canvas);
    matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => this.#readColors());
    this.#readColors();
    this.#resize();
  }

  get empty() {
    return this.strokes.length === 0;
  }

  get drawing() {
    return this.active !== null;
  }

  undo() {
    if (this.drawing || this.empty) return;
    this.strokes.pop();
    this.redraw();
    this.onChange(this, 'edit');
  }

  clear() {
    if (this.empty && !this.drawing) return;
    this.strokes = [];
    this.active = null;
    this.redraw();
    this.onChange(this, 'edit');
  }

  /** Logical coordinates of a pointer event. */
  #point(e) {
    const r = this.canvas.getBoundingClientRect();
    const x = ((e.clientX - r.left) / r.width) * this.width;
    const y = ((e.clientY - r.top) / r.height) * this.height;
    return [Math.round(x * 10) / 10, Math.round(y * 10) / 10];
  }

  #down(e) {
    if (!e.isPrimary || (e.pointerType === 'mouse' && e.button !== 0)) return;
    if (this.active) this.#finish();
    e.preventDefault();
    this.canvas.setPointerCapture?.(e.pointerId);
    const stroke = { points: [this.#point(e)] };
    this.strokes.push(stroke);
    this.active = { pointerId: e.pointerId, stroke };
    this.#schedule();
    this.onChange(this, 'start');
  }

  #move(e) {
    if (!this.active || e.pointerId !== this.active.pointerId) return;
    const events = e.getCoalescedEvents?.() ?? [];
    for (const ev of events.length ? events : [e]) {
      const p = this.#point(ev);
      const pts = this.active.stroke.points;
      const last = pts[pts.length - 1];
      if (Math.hypot(p[0] - last[0], p[1] - last[1]) >= 0.75) pts.push(p);
    }
    this.#schedule();
    this.onChange(this, 'move');
  }

  #up(e) {
    if (!this.active || e.pointerId !== this.active.pointerId) return;
    if (e.type === 'pointerup') {
      const p = this.#point(e);
      const pts = this.active.stroke.points;
      const last = pts[pts.length - 1];
      if (p[0] !== last[0] || p[1] !== last[1]) pts.push(p);
    }
    this.#finish();
  }

  #finish() {
    this.active = null;
    this.redraw();
    this.onChange(this, 'end');
  }

  #schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.redraw();
    });
  }

  #readColors() {
    const s = getComputedStyle(this.canvas);
    this.colors = {
      paper: s.getPropertyValue('--pad-paper').trim() || '#fff',
      ink: s.getPropertyValue('--pad-ink').trim() || '#111',
      guide: s.getPropertyValue('--pad-guide').trim() || '#e5e5e5',
    };
    this.redraw();
  }

  #resize() {
    const r = this.canvas.getBoundingClientRect();
    if (r.width > 0 && r.height > 0) {
      // The logical height is fixed; the width follows the CSS aspect ratio
      // (3:1 on a wide screen, 3:2 on a phone), so the ink width stays MNIST-like.
      const width = Math.round((this.height * r.width) / r.height);
      if (width !== this.width) this.#setLogicalWidth(width);
    }
    const dpr = Math.max(1, Math.min(3, window.devicePixelRatio || 1));
    const scale = r.width > 0 ? (r.width / this.width) * dpr : dpr;
    const w = Math.round(this.width * scale);
    const h = Math.round(this.height * scale);
    if (w > 0 && (this.canvas.width !== w || this.canvas.height !== h)) {
      this.canvas.width = w;
      this.canvas.height = h;
    }
    this.redraw();
  }

  #setLogicalWidth(width) {
    // Keep what is drawn centred when the pad changes shape (a phone rotated).
    const dx = (width - this.width) / 2;
    for (const s of this.strokes) for (const p of s.points) p[0] += dx;
    this.width = width;
    this.inkCanvas.width = width;
    this.canvas.dataset.logicalWidth = String(width);
    this.canvas.dataset.logicalHeight = String(this.height);
  }

  /** Paints the visible canvas. */
  redraw() {
    const { ctx, canvas } = this;
    const sx = canvas.width / this.width;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = this.colors.paper;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.setTransform(sx, 0, 0, sx, 0, 0);
    // A faint writing line, a quarter from the bottom.
    ctx.strokeStyle = this.colors.guide;
    ctx.lineWidth = 1.5;
    ctx.setLineDash([6, 8]);
    ctx.beginPath();
    ctx.moveTo(16, this.height * 0.86);
    ctx.lineTo(this.width - 16, this.height * 0.86);
    ctx.stroke();
    ctx.setLineDash([]);
    paintStrokes(ctx, this.strokes, this.colors.ink);
  }

  /** The strokes at logical size, white ink on black, as RGBA pixels. */
  renderInk() {
    const ctx = this.inkCtx;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, this.width, this.height);
    paintStrokes(ctx, this.strokes, '#fff');
    return ctx.getImageData(0, 0, this.width, this.height);
  }

  /**
   * Some strokes alone (indices into `strokes`, whose points lie in `box`),
   * white on black, cropped to them with a black margin, in a pen as thick
   * next to their size as STROKE_WIDTH is next to a 200 px digit: a digit
   * written small is then as MNIST-like as a large one once scaled to 20×20.
   */
  renderStrokes(indices, box) {
    const extent = Math.max(box.x1 - box.x0, box.y1 - box.y0);
    const pen = Math.max(3, STROKE_WIDTH * Math.min(1, extent / DIGIT_HEIGHT));
    const margin = Math.ceil(pen) + 4;
    const width = Math.ceil(box.x1 - box.x0) + 2 * margin;
    const height = Math.ceil(box.y1 - box.y0) + 2 * margin;
    const canvas = (this.cropCanvas ??= document.createElement('canvas'));
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
    }
    const ctx = (this.cropCtx ??= canvas.getContext('2d', { willReadFrequently: true }));
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, width, height);
    ctx.setTransform(1, 0, 0, 1, margin - box.x0, margin - box.y0);
    paintStrokes(ctx, indices.map((i) => this.strokes[i]), '#fff', pen);
    return ctx.getImageData(0, 0, width, height);
  }
}

/** Round-capped strokes smoothed through the midpoints of their segments. */
function paintStrokes(ctx, strokes, color, width = STROKE_WIDTH) {
  ctx.strokeStyle = color;
  ctx.fillStyle = color;
  ctx.lineWidth = width;
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  for (const { points: p } of strokes) {
    if (p.length === 0) continue;
    if (p.length === 1) {
      ctx.beginPath();
      ctx.arc(p[0][0], p[0][1], width / 2, 0, Math.PI * 2);
      ctx.fill();
      continue;
    }
    ctx.beginPath();
    ctx.moveTo(p[0][0], p[0][1]);
    for (let i = 1; i < p.length - 1; i++) {
      const mx = (p[i][0] + p[i + 1][0]) / 2;
      const my = (p[i][1] + p[i + 1][1]) / 2;
      ctx.quadraticCurveTo(p[i][0], p[i][1], mx, my);
    }
    const last = p[p.length - 1];
    ctx.lineTo(last[0], last[1]);
    ctx.stroke();
  }
}
