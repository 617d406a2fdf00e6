// Runs inside a Web Worker and owns the models: the other end of TinycnnWorker
// (worker.js). Start it as a module worker:
//   new Worker(new URL('tinycnn/worker-host', import.meta.url), { type: 'module' })
// Messages in: { id, op, args }; out: { id, result } or { id, error: { name, message } }.
// The first is { op: 'init', args: [module, build] }, sent by TinycnnWorker.
// Results are transferred, not copied.

import init, { Ensemble, Model, loadedBuild, preprocess, segment, version } from './index.js';

const objects = new Map(); // handle → Model | Ensemble
let nextHandle = 1;

function lookup(handle, op) {
  const object = objects.get(handle);
  if (!object) throw new Error(`TinycnnWorker.${op}: this model was freed (free() was called); load a new one`);
  return object;
}

function lookupModel(handle, op) {
  const object = lookup(handle, op);
  if (!(object instanceof Model)) throw new Error(`TinycnnWorker.${op}: an ensemble has no logits (it averages probabilities)`);
  return object;
}

function keep(object) {
  const handle = nextHandle++;
  objects.set(handle, object);
  return handle;
}

const describe = (model) => ({ inputLength: model.inputLength, classes: model.classes });

const OPS = {
  hello: () => ({ version: version(), build: loadedBuild() }), // the answer to 'init'
  loadModel: (bytes) => {
    const model = new Model(bytes);
    return { handle: keep(model), ...describe(model), info: model.info() };
  },
  loadEnsemble: (handles) => {
    if (!Array.isArray(handles)) throw new Error('TinycnnWorker.loadEnsemble: expected an array of RemoteModels');
    const ensemble = new Ensemble(handles.map((h) => lookup(h, 'loadEnsemble')));
    return { handle: keep(ensemble), ...describe(ensemble), size: ensemble.size };
  },
  predict: (handle, pixels) => lookup(handle, 'predict').predict(pixels),
  logits: (handle, pixels) => lookupModel(handle, 'logits').logits(pixels),
  predictBatch: (handle, pixels) => lookup(handle, 'predictBatch').predictBatch(pixels),
  logitsBatch: (handle, pixels) => lookupModel(handle, 'logitsBatch').logitsBatch(pixels),
  free: (handle) => {
    objects.get(handle)?.free();
    objects.delete(handle);
  },
  preprocess: (rgba, width, height) => preprocess(rgba, width, height),
  segment: (rgba, width, height) => segment(rgba, width, height),
};

// The client sends 'init' first, with the module it compiled (or null: then the worker
// fetches its own); calls that arrive before it wait for it, in order.
let startInit;
const ready = new Promise((resolve) => {
  startInit = (module, build) => resolve(init(module ? { module_or_path: module, build } : undefined));
});

self.addEventListener('message', async ({ data }) => {
  const { id, op, args } = data ?? {};
  try {
    if (op === 'init') startInit(...(Array.isArray(args) ? args : []));
    await ready;
    const run = op === 'init' ? OPS.hello : Object.hasOwn(OPS, op) ? OPS[op] : null;
    if (!run) throw new Error(`TinycnnWorker: unknown operation ${JSON.stringify(op)}`);
    const result = run(...(Array.isArray(args) ? args : []));
    const transfer = ArrayBuffer.isView(result) ? [result.buffer] : [];
    self.postMessage({ id, result }, transfer);
  } catch (e) {
    self.postMessage({ id, error: { name: e?.name ?? 'Error', message: e?.message ?? String(e) } });
  }
});
