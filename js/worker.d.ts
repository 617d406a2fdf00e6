import type { ModelInfo } from './tinycnn.js';

/** Inference off the main thread: tinycnn in a module Worker, behind promises. */
export class TinycnnWorker {
  /** `worker`: a module Worker running `tinycnn/worker-host`; default: started from next to this module. */
  constructor(worker?: Worker);
  /** Resolves once the worker's WebAssembly module is loaded. */
  ready(): Promise<{ version: string; build: 'simd128' | 'scalar' | 'custom' | null }>;
  /** Loads a tinycnn model file in the worker. `transfer: true` moves the ArrayBuffer instead of copying it. */
  loadModel(bytes: Uint8Array | ArrayBuffer, options?: { transfer?: boolean }): Promise<RemoteModel>;
  /** Mean probabilities of models loaded by this worker. */
  loadEnsemble(models: RemoteModel[]): Promise<RemoteModel>;
  preprocess(rgba: Uint8ClampedArray | Uint8Array, width: number, height: number): Promise<Uint8Array>;
  segment(rgba: Uint8ClampedArray | Uint8Array, width: number, height: number): Promise<Uint8Array>;
  /** Stops the worker: pending and later calls reject. */
  terminate(): void;
}

/** A Model (or Ensemble) in a TinycnnWorker; made by loadModel / loadEnsemble. */
export class RemoteModel {
  private constructor();
  readonly inputLength: number;
  readonly classes: number;
  /** The model's info() (null for an ensemble). */
  readonly info: ModelInfo | null;
  /** Members of an ensemble (null for a model). */
  readonly size: number | null;
  predict(pixels: Uint8Array | Uint8ClampedArray): Promise<Float32Array>;
  /** Rejects for an ensemble. */
  logits(pixels: Uint8Array | Uint8ClampedArray): Promise<Float32Array>;
  predictBatch(pixels: Uint8Array | Uint8ClampedArray): Promise<Float32Array>;
  logitsBatch(pixels: Uint8Array | Uint8ClampedArray): Promise<Float32Array>;
  /** Frees it in the worker; a second free() does nothing. */
  free(): Promise<void>;
}
