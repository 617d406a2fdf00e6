// Inference off the main thread: a promise API over postMessage to a worker
// running worker-host.js, which owns the WebAssembly module and the models.
// Pixels are copied into the worker; results come back transferred.

import { simdSupported, wasmUrl } from './build.js';

async function compile(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  try {
    return await WebAssembly.compileStreaming(response.clone());
  } catch {
    return WebAssembly.compile(await response.arrayBuffer()); // served without application/wasm
  }
}

// What a RemoteModel needs of its worker, kept off its public surface.
const remotes = new WeakMap(); // RemoteModel → { owner, handle, send }

export class TinycnnWorker {
  #worker;
  #pending = new Map(); // message id → { resolve, reject }
  #nextId = 1;
  #failure = null; // an Error once the worker is dead: every later call rejects with it
  #hello;

  /**
   * `worker`: a module Worker running tinycnn's worker-host.js. Without one, it is started
   * from next to this module (bundlers that understand `new URL(…, import.meta.url)` workers,
   * e.g. Vite and webpack, bundle it; with esbuild, build worker-host.js as its own entry).
   */
  constructor(worker) {
    this.#worker = worker ?? new Worker(new URL('./worker-host.js', import.meta.url), { type: 'module' });
    this.#worker.addEventListener('message', ({ data }) => this.#settle(data));
    this.#worker.addEventListener('error', (e) => {
      e.preventDefault?.();
      this.#fail(new Error(`TinycnnWorker: the worker failed: ${e.message || 'its script did not load'}`));
    });
    this.#worker.addEventListener('messageerror', () => this.#fail(new Error('TinycnnWorker: a message could not be read')));
    // The .wasm compiles on this thread while the worker starts (a preloaded response can serve it here)
    // and goes over compiled; if that fails the worker fetches it itself, and reports why not.
    const simd = simdSupported();
    this.#hello = compile(wasmUrl(simd)).then(
      (module) => this.#call('init', [module, simd ? 'simd128' : 'scalar']),
      () => this.#call('init', [null]),
    );
  }

  /** Resolves once the worker's WebAssembly module is loaded: `{ version, build }` (build: 'simd128' | 'scalar'). */
  ready() {
    return this.#hello;
  }

  /** Loads a tinycnn model file (bytes are copied; an ArrayBuffer may be transferred with `{ transfer: true }`). */
  async loadModel(bytes, { transfer = false } = {}) {
    const buffer = bytes instanceof ArrayBuffer ? bytes : ArrayBuffer.isView(bytes) ? bytes.buffer : null;
    const { handle, inputLength, classes, info } = await this.#call('loadModel', [bytes], transfer && buffer ? [buffer] : []);
    return this.#remote(handle, { inputLength, classes, info });
  }

  /** An ensemble of models loaded in this worker (they stay usable on their own). */
  async loadEnsemble(models) {
    if (!Array.isArray(models) || !models.every((m) => remotes.get(m)?.owner === this)) {
      throw new Error('TinycnnWorker.loadEnsemble: expected an array of RemoteModels loaded by this worker');
    }
    const handles = models.map((m) => remotes.get(m).handle);
    const { handle, inputLength, classes, size } = await this.#call('loadEnsemble', [handles]);
    return this.#remote(handle, { inputLength, classes, size });
  }

  /** `preprocess(rgba, width, height)` run in the worker. */
  preprocess(rgba, width, height) {
    return this.#call('preprocess', [rgba, width, height]);
  }

  /** `segment(rgba, width, height)` run in the worker. */
  segment(rgba, width, height) {
    return this.#call('segment', [rgba, width, height]);
  }

  /** Stops the worker; calls still waiting, and any later call, reject. */
  terminate() {
    this.#worker.terminate();
    this.#fail(new Error('TinycnnWorker: terminated'));
  }

  #remote(handle, meta) {
    const model = new RemoteModel(meta);
    remotes.set(model, { owner: this, handle, send: (op, args) => this.#call(op, args) });
    return model;
  }

  #call(op, args = [], transfer = []) {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      try {
        this.#worker.postMessage({ id, op, args }, transfer);
      } catch (e) {
        this.#pending.delete(id);
        reject(new Error(`TinycnnWorker.${op}: its arguments cannot be sent to a worker: ${e.message}`));
      }
    });
  }

  #settle({ id, result, error } = {}) {
    const call = this.#pending.get(id);
    if (!call) return;
    this.#pending.delete(id);
    if (error) {
      const e = new Error(error.message);
      e.name = error.name;
      call.reject(e);
    } else {
      call.resolve(result);
    }
  }

  #fail(error) {
    this.#failure ??= error;
    for (const { reject } of this.#pending.values()) reject(this.#failure);
    this.#pending.clear();
  }
}

/** A Model (or Ensemble) living in a TinycnnWorker: the same calls, returning promises. */
export class RemoteModel {
  #freed = false;

  /** Made by TinycnnWorker.loadModel and loadEnsemble, not directly. */
  constructor({ inputLength, classes, info = null, size = null }) {
    this.inputLength = inputLength;
    this.classes = classes;
    this.info = info;
    this.size = size;
  }

  predict(pixels) {
    return this.#call('predict', pixels);
  }

  logits(pixels) {
    return this.#call('logits', pixels);
  }

  predictBatch(pixels) {
    return this.#call('predictBatch', pixels);
  }

  logitsBatch(pixels) {
    return this.#call('logitsBatch', pixels);
  }

  /** Frees the model in the worker; a second free() does nothing. */
  async free() {
    if (this.#freed) return;
    this.#freed = true;
    const self = remotes.get(this);
    if (self) await self.send('free', [self.handle]);
  }

  #call(op, pixels) {
    if (this.#freed) return Promise.reject(new Error(`RemoteModel.${op}: this model was freed (free() was called); load a new one`));
    const self = remotes.get(this);
    if (!self) return Promise.reject(new Error(`RemoteModel.${op}: not a model loaded by a TinycnnWorker`));
    return self.send(op, [self.handle, pixels]);
  }
}
