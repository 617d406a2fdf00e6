// Every export of the tinycnn package, used as the types say: `npm run typecheck`
// (tsc --noEmit) fails if the package's types and this use drift apart.
// Type-checked only, not bundled into the app.
import init, {
  Ensemble,
  Model,
  initSync,
  loadedBuild,
  preprocess,
  segment,
  simdSupported,
  version,
  wasmMemoryBytes,
  wasmUrl,
  type FeatureMaps,
  type ModelInfo,
  type NodeInfo,
} from 'tinycnn';
import { RemoteModel, TinycnnWorker } from 'tinycnn/worker';

export async function everyCall(modelBytes: Uint8Array, wasm: WebAssembly.Module): Promise<string[]> {
  const url: URL = wasmUrl(simdSupported());
  await init();
  await init({ module_or_path: url });
  initSync(wasm);
  const build: 'simd128' | 'scalar' | 'custom' | null = loadedBuild();

  const model = new Model(modelBytes);
  const pixels = new Uint8Array(model.inputLength);
  const probabilities: Float32Array = model.predict(pixels);
  const logits: Float32Array = model.logits(pixels);
  const batch: Float32Array = model.predictBatch(new Uint8Array(2 * model.inputLength));
  const batchLogits: Float32Array = model.logitsBatch(pixels);
  const int8: Int8Array = model.runInt8(new Int8Array(model.inputLength));
  const info: ModelInfo = model.info();
  const node: NodeInfo = info.nodes[0];
  const maps: FeatureMaps = model.firstConvFeatures(pixels);
  const sizes: number[] = [model.classes, model.int8OutputLength, info.arenaBytes, node.macs, maps.data.length];

  const ensemble = new Ensemble([model]);
  const mean: Float32Array = ensemble.predict(pixels);
  const means: Float32Array = ensemble.predictBatch(pixels);
  sizes.push(ensemble.size, ensemble.inputLength, ensemble.classes);
  ensemble.free();
  {
    using scoped = new Model(modelBytes); // freed at the end of the block (Symbol.dispose)
    sizes.push(scoped.classes);
  }
  model[Symbol.dispose]();
  model.free();

  const rgba = new Uint8ClampedArray(280 * 280 * 4);
  const digit: Uint8Array = preprocess(rgba, 280, 280);
  const digits: Uint8Array = segment(rgba, 280, 280);
  const memory: number = wasmMemoryBytes();

  const tiny = new TinycnnWorker(new Worker(new URL('./worker.js', import.meta.url), { type: 'module' }));
  const ready: { version: string; build: string | null } = await tiny.ready();
  const remote: RemoteModel = await tiny.loadModel(modelBytes);
  const remoteEnsemble: RemoteModel = await tiny.loadEnsemble([remote]);
  const remoteResults: Float32Array[] = await Promise.all([
    remote.predict(digit),
    remote.logits(digit),
    remote.predictBatch(digits),
    remote.logitsBatch(digits),
    remoteEnsemble.predict(digit),
  ]);
  const remoteSizes = [remote.inputLength, remote.classes, remote.info?.macs, remoteEnsemble.size];
  const pre: Uint8Array = await tiny.preprocess(rgba, 280, 280);
  const seg: Uint8Array = await tiny.segment(rgba, 280, 280);
  await remoteEnsemble.free();
  await remote.free();
  tiny.terminate();

  return [
    version(),
    String(build),
    ready.version,
    String(probabilities.length + logits.length + batch.length + batchLogits.length + int8.length),
    String(mean.length + means.length + memory + pre.length + seg.length),
    sizes.concat(remoteResults.map((r) => r.length)).join(),
    remoteSizes.join(),
  ];
}
