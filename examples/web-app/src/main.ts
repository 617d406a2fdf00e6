// A digit reader: draw on the canvas, read the digit. The model runs in a Web Worker
// (tinycnn/worker), so drawing never waits for inference; `?inference=main` runs it on
// the main thread instead (tinycnn itself), to compare. On load the page reads a 7 it
// draws itself, and records when that first prediction appeared.
import init, { Model, loadedBuild, preprocess } from 'tinycnn';
import { TinycnnWorker } from 'tinycnn/worker';

interface Reader {
  read(rgba: Uint8ClampedArray, width: number, height: number): Promise<Float32Array>;
  build: string;
}

declare global {
  interface Window {
    /** For tests: when the first reading was shown (ms after navigation) and what it was. */
    firstPrediction?: { ms: number; digit: number; build: string; inference: string };
    /** For tests: how many readings were shown. */
    readings?: number;
  }
}

const MODEL_URL = './deepconvnet-int8.safetensors';
const inference = new URLSearchParams(location.search).get('inference') === 'main' ? 'main' : 'worker';
// Everything starts at once: the worker (or the wasm) and the model download side by side.
const tiny = inference === 'worker' ? new TinycnnWorker(new Worker(new URL('./worker.js', import.meta.url), { type: 'module' })) : null;
const modelBytes = fetch(MODEL_URL).then((r) => {
  if (!r.ok) throw new Error(`${MODEL_URL}: HTTP ${r.status}`);
  return r.arrayBuffer();
});

async function workerReader(tiny: TinycnnWorker): Promise<Reader> {
  const [model, { build }] = await Promise.all([
    modelBytes.then((bytes) => tiny.loadModel(bytes, { transfer: true })).then((m) => (performance.mark('model loaded'), m)),
    tiny.ready().then((hello) => (performance.mark('wasm ready'), hello)),
  ]);
  return {
    read: async (rgba, width, height) => model.predict(await tiny.preprocess(rgba, width, height)),
    build: build ?? 'unknown',
  };
}

async function mainThreadReader(): Promise<Reader> {
  const [, bytes] = await Promise.all([init().then(() => performance.mark('wasm ready')), modelBytes]);
  const model = new Model(new Uint8Array(bytes));
  performance.mark('model loaded');
  return {
    read: async (rgba, width, height) => model.predict(preprocess(rgba, width, height)),
    build: loadedBuild() ?? 'unknown',
  };
}

const canvas = document.querySelector<HTMLCanvasElement>('#pad')!;
const output = document.querySelector<HTMLOutputElement>('#digit')!;
const detail = document.querySelector<HTMLParagraphElement>('#detail')!;
const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
ctx.lineCap = ctx.lineJoin = 'round';
ctx.lineWidth = 18;

function clear() {
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
}

function drawSeven() {
  ctx.beginPath();
  ctx.moveTo(80, 70);
  ctx.lineTo(200, 70);
  ctx.lineTo(120, 220);
  ctx.stroke();
}

async function show(reader: Reader): Promise<number> {
  const image = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const p = await reader.read(image.data, image.width, image.height);
  const digit = p.indexOf(Math.max(...p));
  output.value = String(digit);
  detail.textContent = `${(100 * p[digit]).toFixed(1)} % sure (wasm ${reader.build}, ${inference} thread)`;
  window.readings = (window.readings ?? 0) + 1;
  return digit;
}

async function start() {
  const reader = await (tiny ? workerReader(tiny) : mainThreadReader());
  clear();
  drawSeven();
  performance.mark('seven drawn');
  const digit = await show(reader);
  window.firstPrediction = { ms: performance.now(), digit, build: reader.build, inference };

  let drawing = false;
  let showingSeven = true;
  canvas.addEventListener('pointerdown', (e) => {
    if (showingSeven) clear();
    showingSeven = false;
    drawing = true;
    ctx.beginPath();
    ctx.moveTo(e.offsetX, e.offsetY);
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!drawing) return;
    ctx.lineTo(e.offsetX, e.offsetY);
    ctx.stroke();
  });
  canvas.addEventListener('pointerup', () => {
    drawing = false;
    show(reader).catch(fail);
  });
  document.querySelector('#clear')!.addEventListener('click', () => {
    clear();
    showingSeven = false;
    output.value = '…';
  });
}

function fail(e: unknown) {
  detail.textContent = `error: ${e instanceof Error ? e.message : String(e)}`;
  console.error(e);
}

start().catch(fail);
