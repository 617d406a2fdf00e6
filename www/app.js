// The digit page: drawing pad → segment() → predictBatch() over the digits → DOM.
//
// Everything runs in this tab: the wasm package (../pkg/index.js) and the
// shipped int8 models (../models/*.safetensors) are fetched from the same
// server, nothing else is requested.
//
// Backends: the CPU wasm package always; when navigator.gpu gives an adapter,
// a switch offers WebGPU, whose package (../pkg/gpu/tinycnn.js, GpuModel) is
// imported only when it is chosen. The badge (#backend) names the backend that
// produced the reading shown.
//
// Test hook: window.__tinycnn = { ready, lastResult, timings, backend, model, ... }
// and window.tinycnnReady (= __tinycnn.ready), see tests/e2e/.

import { StrokePad } from './draw.js';
import { groupStrokes } from './segment.js';
import { detectBackend, detectWebGpu } from './backend.js';
import { el, formatBytes, formatCount, formatMs, paintGray, paintMap, percent } from './views.js';

const PIXELS = 28 * 28;
const EMPTY_READING = 'Nothing drawn yet';
const LIVE_INTERVAL_MS = 50;

/** The shipped models, relative to this page. */
const SHIPPED = {
  deepconvnet: { label: 'DeepConvNet', url: '../models/deepconvnet-int8.safetensors' },
  resnet: { label: 'ResNet-style', url: '../models/resnet-int8.safetensors' },
  inception: { label: 'Inception-style', url: '../models/inception-int8.safetensors' },
};
const ENSEMBLE = ['deepconvnet', 'resnet', 'inception'];
const ENSEMBLE_LABEL = 'Ensemble';

const $ = (id) => document.getElementById(id);
const ui = {
  backend: $('backend'),
  backendField: $('backend-field'),
  backendSelect: $('backend-select'),
  status: $('status'),
  canvas: $('canvas'),
  padHint: $('pad-hint'),
  undo: $('undo'),
  clear: $('clear'),
  select: $('model'),
  file: $('model-file'),
  modelError: $('model-error'),
  modelInfo: $('model-info'),
  dropOverlay: $('drop-overlay'),
  pad: $('pad'),
  latency: $('latency'),
  reading: $('reading'),
  digits: $('digits'),
  seen: $('seen'),
  seenWhich: $('seen-which'),
  probs: $('probs'),
  probsWhich: $('probs-which'),
  features: $('features'),
  featuresCaption: $('features-caption'),
};

// ---------------------------------------------------------------- test hook

let resolveReady;
let rejectReady;
const ready = new Promise((res, rej) => {
  resolveReady = res;
  rejectReady = rej;
});
ready.catch(() => {}); // reported on the page; don't double-report as unhandled
const hook = {
  ready,
  backend: null, // backend of the reading shown: "wasm-simd" | "wasm" | "webgpu"
  backendChoice: 'cpu', // the switch: "cpu" | "webgpu"
  webgpu: null, // the WebGPU adapter ({label, fallback}) once detected, else null
  model: null,
  lastResult: null,
  predictions: 0,
  // ms since navigation start (performance.now()), and durations (…Ms)
  timings: { appStart: performance.now() },
  errors: [],
  /** 'strokes' (default) or 'pixels': how the pad is split into digits; reads the pad again. */
  setSegmentation(mode) {
    segmentation = mode === 'pixels' ? 'pixels' : 'strokes';
    recognize(true);
  },
};
window.__tinycnn = hook;
window.tinycnnReady = ready;

// ---------------------------------------------------------------- state

let wasm = null; // the pkg module
const bytesCache = new Map(); // key → Promise<Uint8Array>
const runners = new Map(); // key → runner
let runner = null; // the runner in use
let customRunner = null;
let selectToken = 0;
let selected = -1; // index of the digit shown in detail; -1 = the last one
let last = null; // last recognition
let lastLiveAt = 0;
let liveQueued = false;
let segmentation = new URLSearchParams(location.search).get('segmentation') === 'pixels' ? 'pixels' : 'strokes';

// WebGPU (all optional; the CPU path never waits for any of it)
let backendChoice = 'cpu';
let gpuPkg = null; // Promise of the initialised ../pkg/gpu module
const gpuStates = new WeakMap(); // runner → { promise, model, error }
let gpuBusy = false; // a GPU recognition is in flight
let gpuPending = null; // null, or `final` of the recognition asked for meanwhile
let recognitionSeq = 0; // a GPU result is shown only if no recognition started since

const backend = detectBackend();
const WEBGPU_BADGE = { id: 'webgpu', label: 'WebGPU', detail: 'WebGPU compute shaders (int8, bit-identical to the CPU engine).' };

/** The badge: which backend produced the reading shown. */
function setBadge(b) {
  hook.backend = b.id;
  ui.backend.textContent = b.label;
  ui.backend.title = b.id === 'webgpu' && hook.webgpu ? `${b.detail} Adapter: ${hook.webgpu.label}.` : b.detail;
  ui.backend.dataset.backend = b.id;
}
setBadge(backend);

// ---------------------------------------------------------------- status & errors

function setStatus(text, kind = 'muted') {
  ui.status.textContent = text;
  ui.status.className = `chip chip-${kind}`;
}

function showModelError(message) {
  ui.modelError.textContent = message;
  ui.modelError.hidden = !message;
}

function errorText(e) {
  if (e == null) return 'unknown error';
  if (typeof e === 'string') return e;
  return e.message || String(e);
}

// ---------------------------------------------------------------- models

function fetchBytes(key) {
  if (!bytesCache.has(key)) {
    const { url } = SHIPPED[key];
    const p = fetch(url).then(async (r) => {
      if (!r.ok) throw new Error(`${url.replace('../', '')}: HTTP ${r.status} ${r.statusText}`.trim());
      return new Uint8Array(await r.arrayBuffer());
    });
    p.catch(() => bytesCache.delete(key)); // let a later attempt retry
    bytesCache.set(key, p);
  }
  return bytesCache.get(key);
}

/** Checks that a model reads 28×28 grayscale digits; returns its info(). */
function checkDigitModel(model) {
  const info = model.info();
  const [c, h, w] = Array.from(info.input);
  if (c !== 1 || h !== 28 || w !== 28) {
    throw new Error(`it expects ${c}×${h}×${w} inputs, but this page feeds 1×28×28 digit images`);
  }
  if (info.classes !== 10) throw new Error(`it has ${info.classes} classes, not the 10 digits`);
  return info;
}

function firstConvName(info) {
  return info.nodes?.find((n) => /conv/i.test(n.op))?.name ?? 'first conv';
}

function singleRunner(key, label, model, info, bytes = null) {
  return {
    key,
    label,
    info,
    model,
    bytes, // the file's bytes (custom models), for the WebGPU backend
    predictBatch: (batch) => model.predictBatch(batch),
    features: (px) => model.firstConvFeatures(px),
    featuresFrom: `${label} · ${firstConvName(info)}`,
    free: () => model.free(),
  };
}

async function makeShippedRunner(key) {
  const bytes = await fetchBytes(key);
  const model = new wasm.Model(bytes);
  try {
    return singleRunner(key, SHIPPED[key].label, model, checkDigitModel(model));
  } catch (e) {
    model.free();
    throw e;
  }
}

async function makeEnsembleRunner() {
  // The Ensemble copies its members' weights; the members stay usable on their own.
  const members = await Promise.all(ENSEMBLE.map(getRunner));
  const ens = new wasm.Ensemble(members.map((m) => m.model));
  const infos = members.map((m) => m.info);
  const dtypes = [...new Set(infos.map((i) => i.dtype))];
  const info = {
    input: infos[0].input,
    classes: infos[0].classes,
    params: infos.reduce((s, i) => s + i.params, 0),
    macs: infos.reduce((s, i) => s + Number(i.macs), 0),
    arenaBytes: Math.max(...infos.map((i) => i.arenaBytes)),
    dtype: dtypes.join('/'),
    nodes: infos[0].nodes,
  };
  const first = members[0];
  return {
    key: 'ensemble',
    label: ENSEMBLE_LABEL,
    info,
    model: null,
    predictBatch: (batch) => ens.predictBatch(batch),
    features: first.features,
    featuresFrom: `${first.label} (1st member) · ${firstConvName(first.info)}`,
    free: () => ens.free(),
  };
}

function getRunner(key) {
  if (!runners.has(key)) {
    const p = key === 'ensemble' ? makeEnsembleRunner() : makeShippedRunner(key);
    p.catch(() => runners.delete(key));
    runners.set(key, p);
  }
  return runners.get(key);
}

function labelOf(key) {
  if (key === 'ensemble') return ENSEMBLE_LABEL;
  if (key === 'custom') return customRunner?.label ?? 'your model';
  return SHIPPED[key]?.label ?? key;
}

function useRunner(r) {
  runner = r;
  hook.model = r.key;
  if (ui.select.value !== r.key) ui.select.value = r.key;
  const i = r.info;
  const macs = Number(i.macs);
  ui.modelInfo.textContent = [
    r.label,
    i.dtype,
    `${formatCount(i.params)} parameters`,
    `${formatCount(macs)} MACs`,
    `arena ${formatBytes(i.arenaBytes)}`,
  ].join(' · ');
  ui.featuresCaption.textContent = r.featuresFrom;
  setStatus(`ready · ${r.label}`, 'ok');
  recognize(true);
}

async function selectModel(key) {
  const token = ++selectToken;
  const previous = runner;
  if (key === 'custom') {
    if (customRunner) useRunner(customRunner);
    return;
  }
  setStatus(`loading ${labelOf(key)}…`, 'busy');
  try {
    const r = await getRunner(key);
    if (token !== selectToken) return;
    showModelError('');
    useRunner(r);
  } catch (e) {
    if (token !== selectToken) return;
    showModelError(`Could not load ${labelOf(key)}: ${errorText(e)}.` + (previous ? ` Still using ${previous.label}.` : ''));
    if (previous) useRunner(previous);
    else setStatus('no model', 'error');
  }
}

async function loadCustomFile(file) {
  if (!wasm) return;
  const previous = runner;
  let model = null;
  try {
    if (!/\.safetensors$/i.test(file.name)) throw new Error('expected a .safetensors file');
    const bytes = new Uint8Array(await file.arrayBuffer());
    model = new wasm.Model(bytes);
    const info = checkDigitModel(model);
    const r = singleRunner('custom', file.name, model, info, bytes);
    if (customRunner) freeGpu(customRunner);
    customRunner?.free();
    customRunner = r;
    let opt = ui.select.querySelector('option[value="custom"]');
    if (!opt) {
      opt = el('option', { value: 'custom' });
      ui.select.append(opt);
    }
    opt.textContent = `Yours: ${file.name}`;
    selectToken++;
    showModelError('');
    useRunner(r);
  } catch (e) {
    model?.free();
    showModelError(`Could not load “${file.name}”: ${errorText(e)}.` + (previous ? ` Still using ${previous.label}.` : ''));
    if (previous) ui.select.value = previous.key;
  }
}

// ---------------------------------------------------------------- recognition

const pad = new StrokePad(ui.canvas, { onChange: onPadChange });

function onPadChange(_pad, phase) {
  const empty = pad.empty;
  ui.undo.disabled = empty;
  ui.clear.disabled = empty;
  ui.padHint.hidden = !empty;
  if (phase === 'start') selected = -1;
  if (phase === 'end' || phase === 'edit') {
    recognize(true);
  } else {
    queueLive();
  }
}

/** While drawing: at most one recognition per frame and per LIVE_INTERVAL_MS. */
function queueLive() {
  if (liveQueued) return;
  liveQueued = true;
  requestAnimationFrame(function tick() {
    if (!pad.drawing) {
      liveQueued = false;
      return;
    }
    if (performance.now() - lastLiveAt < LIVE_INTERVAL_MS) {
      requestAnimationFrame(tick);
      return;
    }
    liveQueued = false;
    recognize(false);
  });
}

/**
 * The drawing as n × 784 digit bytes, empty if there is no ink. By default
 * the strokes say which digit is which (segment.js) and each digit is
 * preprocessed alone; `?segmentation=pixels` (or hook.setSegmentation) reads
 * the whole pad with segment() instead, by connected ink, as before strokes
 * were used: for comparing the two.
 */
function segmentPad() {
  if (segmentation === 'pixels') {
    const img = pad.renderInk();
    try {
      return wasm.segment(img.data, img.width, img.height);
    } catch {
      return new Uint8Array(0); // no ink found
    }
  }
  const digits = [];
  for (const group of groupStrokes(pad.strokes)) {
    const img = pad.renderStrokes(group.strokes, group.box);
    try {
      // One group of strokes too wide for one digit (two written in one stroke): segment() cuts it.
      const wide = group.box.x1 - group.box.x0 > 1.2 * (group.box.y1 - group.box.y0) + 40;
      digits.push(wide ? wasm.segment(img.data, img.width, img.height) : wasm.preprocess(img.data, img.width, img.height));
    } catch {
      // no ink in this group (a single point): nothing to read
    }
  }
  const batch = new Uint8Array(digits.reduce((n, d) => n + d.length, 0));
  let at = 0;
  for (const d of digits) {
    batch.set(d, at);
    at += d.length;
  }
  return batch;
}

/** A digit per 784 bytes of `batch`, from its class probabilities. */
function toDigit(batch, k, probs) {
  let best = 0;
  for (let c = 1; c < probs.length; c++) if (probs[c] > probs[best]) best = c;
  return { digit: best, confidence: probs[best], probabilities: probs, pixels: batch.slice(k * PIXELS, (k + 1) * PIXELS) };
}

/** Segments the pad, timed: the digit batch (n × 784 bytes) and when it started and ended. */
function segmentTimed() {
  const t0 = performance.now();
  lastLiveAt = t0;
  const batch = segmentPad();
  return { t0, t1: performance.now(), batch, n: Math.floor(batch.length / PIXELS) };
}

/**
 * The digits of a batch from its probabilities (n × classes). Every backend
 * answers through this one interface, `predictBatch(batch)`: the CPU runners
 * (a model or the ensemble) at once, the WebGPU model as a promise.
 */
function digitsOf(batch, n, probs) {
  const classes = probs.length / Math.max(n, 1);
  const digits = [];
  for (let k = 0; k < n; k++) digits.push(toDigit(batch, k, Array.from(probs.subarray(k * classes, (k + 1) * classes))));
  return digits;
}

function publish(digits, t0, t1, t2, final, strokes, model, badge) {
  last = { digits, inferenceMs: t2 - t1, totalMs: t2 - t0, final };
  hook.predictions++;
  hook.lastResult = {
    text: digits.map((d) => d.digit).join(''),
    digits: digits.map(({ digit, confidence, probabilities }) => ({ digit, confidence, probabilities })),
    latencyMs: t2 - t0,
    inferenceMs: t2 - t1,
    model,
    backend: badge.id,
    strokes,
    final,
  };
  if (hook.timings.firstPrediction === undefined) hook.timings.firstPrediction = t2;
  setBadge(badge);
  ui.reading.setAttribute('aria-busy', String(!final)); // announce settled readings only
  renderResult();
}

function recognize(final) {
  if (!runner || !wasm) return;
  if (pad.empty) {
    recognitionSeq++;
    last = null;
    const badge = backendChoice === 'webgpu' && gpuStates.get(runner)?.model ? WEBGPU_BADGE : backend;
    setBadge(badge);
    hook.lastResult = { text: '', digits: [], latencyMs: 0, model: runner.key, backend: badge.id, strokes: 0, final: true };
    renderEmpty();
    return;
  }
  const gpu = backendChoice === 'webgpu' ? gpuModelFor(runner) : null;
  if (gpu) {
    recognizeGpu(final, gpu);
    return;
  }
  recognitionSeq++;
  const { t0, t1, batch, n } = segmentTimed();
  const probs = n ? runner.predictBatch(batch) : new Float32Array(0);
  publish(digitsOf(batch, n, probs), t0, t1, performance.now(), final, pad.strokes.length, runner.key, backend);
}

/** One GPU recognition at a time; asks made meanwhile are merged into one rerun. */
async function recognizeGpu(final, gpu) {
  if (gpuBusy) {
    gpuPending = (gpuPending ?? false) || final;
    return;
  }
  gpuBusy = true;
  const seq = ++recognitionSeq;
  const r = runner;
  try {
    const strokes = pad.strokes.length;
    const { t0, t1, batch, n } = segmentTimed();
    const probs = n ? await gpu.predictBatch(batch) : new Float32Array(0);
    const t2 = performance.now();
    if (seq === recognitionSeq && r === runner && backendChoice === 'webgpu') {
      publish(digitsOf(batch, n, probs), t0, t1, t2, final, strokes, r.key, WEBGPU_BADGE);
    }
  } catch (e) {
    showModelError(`WebGPU failed (${errorText(e)}); back to the CPU backend.`);
    gpuPending = null;
    selectBackend('cpu');
  } finally {
    gpuBusy = false;
  }
  if (gpuPending !== null) {
    const f = gpuPending;
    gpuPending = null;
    recognize(f);
  }
}

// ---------------------------------------------------------------- WebGPU backend

function loadGpuPackage() {
  if (!gpuPkg) {
    gpuPkg = import('../pkg/gpu/tinycnn.js').then(async (mod) => {
      await mod.default();
      return mod;
    });
    gpuPkg.catch(() => (gpuPkg = null)); // let a later attempt retry
  }
  return gpuPkg;
}

/**
 * The runner's GpuModel if it is ready; otherwise null, and it starts loading
 * (the CPU answers meanwhile; a reading follows on the GPU once it is loaded).
 */
function gpuModelFor(r) {
  const state = gpuStates.get(r);
  if (state) return state.model ?? null;
  const s = { promise: null, model: null, error: null };
  gpuStates.set(r, s);
  setStatus(`loading WebGPU · ${r.label}…`, 'busy');
  s.promise = (async () => {
    if (r.key === 'ensemble') throw new Error('the Ensemble runs on the CPU only');
    const bytes = r.bytes ?? (await fetchBytes(r.key));
    const mod = await loadGpuPackage();
    return mod.GpuModel.create(bytes);
  })();
  s.promise.then(
    (model) => {
      s.model = model;
      if (r === runner) setStatus(`ready · ${r.label} · WebGPU`, 'ok');
      if (r === runner && backendChoice === 'webgpu') recognize(true);
    },
    (e) => {
      gpuStates.delete(r);
      if (r !== runner || backendChoice !== 'webgpu') return;
      showModelError(`WebGPU cannot run ${r.label}: ${errorText(e)}. Using the CPU backend.`);
      selectBackend('cpu');
    },
  );
  return null;
}

function freeGpu(r) {
  const s = gpuStates.get(r);
  gpuStates.delete(r);
  s?.promise?.then((m) => m.free(), () => {});
}

function selectBackend(choice) {
  backendChoice = choice === 'webgpu' && hook.webgpu ? 'webgpu' : 'cpu';
  hook.backendChoice = backendChoice;
  if (ui.backendSelect.value !== backendChoice) ui.backendSelect.value = backendChoice;
  if (runner) setStatus(`ready · ${runner.label}`, 'ok');
  recognize(true);
}

/** After start: offers the switch if navigator.gpu gives an adapter. */
async function offerWebGpu(wanted) {
  const adapter = await detectWebGpu();
  hook.webgpu = adapter;
  if (!adapter) return;
  ui.backendField.hidden = false;
  ui.backendSelect.title = `WebGPU adapter: ${adapter.label}${adapter.fallback ? ' (software fallback)' : ''}`;
  if (wanted === 'webgpu') selectBackend('webgpu');
}

// ---------------------------------------------------------------- rendering

const probRows = [];
let featureCanvases = [];
function buildProbs() {
  for (let c = 0; c < 10; c++) {
    const fill = el('span', { class: 'bar-fill' });
    const value = el('span', { class: 'prob-value', text: '–' });
    const li = el('li', { class: 'prob' },
      el('span', { class: 'prob-digit', text: String(c) }),
      el('span', { class: 'bar', 'aria-hidden': 'true' }, fill),
      value);
    probRows.push({ li, fill, value });
    ui.probs.append(li);
  }
}
buildProbs();

function renderEmpty() {
  ui.reading.replaceChildren(el('span', { class: 'reading-empty', text: EMPTY_READING }));
  ui.reading.removeAttribute('aria-label');
  ui.digits.replaceChildren();
  ui.latency.textContent = '';
  ui.seenWhich.textContent = '';
  ui.probsWhich.textContent = '';
  paintGray(ui.seen, new Uint8Array(PIXELS));
  for (const row of probRows) {
    row.fill.style.width = '0%';
    row.value.textContent = '–';
    row.li.classList.remove('top');
  }
  ui.features.replaceChildren(el('p', { class: 'features-empty', text: 'Draw a digit to see its feature maps.' }));
  featureCanvases = [];
}

function renderResult() {
  const { digits } = last;
  ui.latency.textContent = `${formatMs(last.inferenceMs)} inference · ${formatMs(last.totalMs)} total`;
  if (digits.length === 0) {
    renderEmpty();
    ui.latency.textContent = 'no ink found';
    return;
  }
  const idx = selected >= 0 && selected < digits.length ? selected : digits.length - 1;

  // The number, and one tile per digit.
  ui.reading.replaceChildren(
    ...digits.map((d, i) => el('span', { class: `reading-digit${d.confidence < 0.6 ? ' unsure' : ''}${i === idx && digits.length > 1 ? ' current' : ''}`, text: String(d.digit) })),
  );
  ui.reading.setAttribute('aria-label', `Reading: ${digits.map((d) => d.digit).join('')}`);
  const tiles = digits.map((d, i) => {
    const thumb = el('canvas', { width: '28', height: '28', class: 'thumb', 'aria-hidden': 'true' });
    paintGray(thumb, d.pixels);
    const btn = el('button', {
      type: 'button',
      class: 'digit-tile',
      'aria-pressed': String(i === idx),
      'aria-label': `Digit ${i + 1}: ${d.digit}, ${percent(d.confidence)} confident. Show details.`,
      onclick: () => {
        selected = i;
        renderResult();
      },
    }, thumb,
    el('span', { class: 'tile-digit', text: String(d.digit) }),
    el('span', { class: 'tile-conf', text: percent(d.confidence) }));
    return el('li', {}, btn);
  });
  ui.digits.replaceChildren(...tiles);

  // Detail of the current digit: what the network sees, its probabilities.
  const d = digits[idx];
  const which = digits.length > 1 ? ` — digit ${idx + 1} of ${digits.length}` : '';
  ui.seenWhich.textContent = which;
  ui.probsWhich.textContent = which;
  paintGray(ui.seen, d.pixels);
  d.probabilities.slice(0, 10).forEach((p, c) => {
    const row = probRows[c];
    row.fill.style.width = `${(p * 100).toFixed(2)}%`;
    row.value.textContent = percent(p);
    row.li.classList.toggle('top', c === d.digit);
    row.li.setAttribute('aria-label', `${c}: ${percent(p)}`);
  });
  renderFeatures(d.pixels);
}

function renderFeatures(pixels) {
  let f;
  try {
    f = runner.features(pixels);
  } catch (e) {
    ui.features.replaceChildren(el('p', { class: 'muted small', text: `Feature maps unavailable: ${errorText(e)}` }));
    featureCanvases = [];
    return;
  }
  const { channels, height, width, data } = f;
  if (featureCanvases.length !== channels || featureCanvases[0]?.width !== width || featureCanvases[0]?.height !== height) {
    featureCanvases = [];
    const items = [];
    for (let c = 0; c < channels; c++) {
      const cv = el('canvas', { width: String(width), height: String(height), class: 'fmap', role: 'img', 'aria-label': `feature map ${c + 1}` });
      featureCanvases.push(cv);
      items.push(el('figure', { class: 'fmap-item', role: 'listitem' }, cv, el('figcaption', { text: String(c + 1) })));
    }
    ui.features.replaceChildren(...items);
  }
  for (let c = 0; c < channels; c++) paintMap(featureCanvases[c], data, c * width * height, width, height);
  ui.features.dataset.shape = `${channels}×${height}×${width}`;
}

// ---------------------------------------------------------------- controls

ui.undo.addEventListener('click', () => pad.undo());
ui.clear.addEventListener('click', () => pad.clear());
document.addEventListener('keydown', (e) => {
  if (e.target instanceof HTMLSelectElement || e.target instanceof HTMLInputElement) return;
  if ((e.ctrlKey || e.metaKey) && !e.shiftKey && e.key.toLowerCase() === 'z') {
    e.preventDefault();
    pad.undo();
  } else if (e.key === 'Escape') {
    pad.clear();
  }
});
ui.select.addEventListener('change', () => selectModel(ui.select.value));
ui.backendSelect.addEventListener('change', () => {
  showModelError('');
  selectBackend(ui.backendSelect.value);
});
ui.file.addEventListener('change', () => {
  const file = ui.file.files?.[0];
  if (file) loadCustomFile(file).finally(() => (ui.file.value = ''));
});

// Drag and drop a model anywhere on the page (the pad shows where).
let dragDepth = 0;
const hasFiles = (e) => Array.from(e.dataTransfer?.types ?? []).includes('Files');
window.addEventListener('dragenter', (e) => {
  if (!hasFiles(e)) return;
  dragDepth++;
  ui.dropOverlay.hidden = false;
});
window.addEventListener('dragleave', () => {
  if (--dragDepth <= 0) {
    dragDepth = 0;
    ui.dropOverlay.hidden = true;
  }
});
window.addEventListener('dragover', (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  e.dataTransfer.dropEffect = 'copy';
});
window.addEventListener('drop', (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  dragDepth = 0;
  ui.dropOverlay.hidden = true;
  const file = e.dataTransfer.files?.[0];
  if (file) loadCustomFile(file);
});

window.addEventListener('error', (e) => hook.errors.push(errorText(e.error ?? e.message)));
window.addEventListener('unhandledrejection', (e) => hook.errors.push(errorText(e.reason)));

// ---------------------------------------------------------------- start

async function start() {
  const params = new URLSearchParams(location.search);
  const wanted = params.get('model');
  const key = wanted && (wanted in SHIPPED || wanted === 'ensemble') ? wanted : 'deepconvnet';
  ui.select.value = key;
  setStatus(`loading ${labelOf(key)}…`, 'busy');
  renderEmpty();

  // The wasm package and the model's bytes download in parallel.
  for (const k of key === 'ensemble' ? ENSEMBLE : [key]) fetchBytes(k).catch(() => {});
  const t0 = performance.now();
  try {
    // pkg/index.js fetches the SIMD128 build, or the scalar one where the browser lacks SIMD128.
    const mod = await import('../pkg/index.js');
    await mod.default();
    wasm = mod;
    hook.wasmBuild = mod.loadedBuild();
    if (typeof mod.version === 'function') document.getElementById('version').textContent = `tinycnn ${mod.version()}.`;
  } catch (e) {
    throw new Error(`the WebAssembly package did not load (${errorText(e)}); build it with scripts/serve`);
  }
  hook.timings.wasmReady = performance.now();
  hook.timings.wasmInitMs = hook.timings.wasmReady - t0;

  const r = await getRunner(key);
  hook.timings.navigationToReady = performance.now();
  hook.timings.modelLoadMs = hook.timings.navigationToReady - hook.timings.wasmReady;
  ui.canvas.dataset.ready = 'true';
  useRunner(r);
  ui.status.title = `Ready ${Math.round(hook.timings.navigationToReady)} ms after navigation`;
}

start().then(
  () => {
    resolveReady(hook);
    // Only now: asking for an adapter must not delay the first prediction.
    hook.webgpuDetected = offerWebGpu(new URLSearchParams(location.search).get('backend'));
  },
  (e) => {
    const msg = `Could not start: ${errorText(e)}`;
    setStatus('failed to load', 'error');
    showModelError(msg);
    hook.errors.push(msg);
    rejectReady(new Error(msg));
  },
);
