export * from './tinycnn.js';
import type { InitInput } from './tinycnn.js';

export { simdSupported, wasmUrl } from './build.js';
/**
 * Loads the WebAssembly module once: the build this engine supports, next to this module,
 * or `module_or_path` (a URL, Response, bytes or compiled module).
 */
export default function init(options?: {
  module_or_path?: InitInput | Promise<InitInput>;
  /** Which build module_or_path is, for loadedBuild() (default 'custom'). */
  build?: 'simd128' | 'scalar';
}): Promise<void>;
/** Synchronous init from a compiled module or its bytes. */
export function initSync(module: WebAssembly.Module | BufferSource): void;
/** Which build init() loaded: null before init, 'custom' when a module_or_path was given. */
export function loadedBuild(): 'simd128' | 'scalar' | 'custom' | null;
