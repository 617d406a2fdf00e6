// The package's entry for browsers and bundlers. An engine without SIMD128
// cannot even compile the SIMD128 build, so init() asks the engine first and
// fetches the scalar build there.
// Both builds come from the same Rust code with the same bindings (scripts/build-wasm
// checks that their JS glue is byte-identical), so one glue serves either .wasm.

import initBindings, * as bindings from './tinycnn.js';
import { guardFreed } from './guard.js';
import { simdSupported, wasmUrl } from './build.js';

export * from './tinycnn.js';
export { simdSupported, wasmUrl };

guardFreed(bindings);

let loaded = null;
let build = null;

/**
 * Loads and instantiates the WebAssembly module, once (later calls return the first one's promise).
 * Without an argument it picks the build by simdSupported(); `{ module_or_path }` loads that one
 * (a URL, Response, bytes or compiled WebAssembly.Module), as wasm-bindgen's own init does;
 * `build` then names it for loadedBuild().
 */
export default function init(options) {
  if (!loaded) {
    const explicit = options?.module_or_path !== undefined;
    const simd = simdSupported();
    loaded = initBindings({ module_or_path: explicit ? options.module_or_path : wasmUrl(simd) }).then(
      () => {
        build = explicit ? (options.build ?? 'custom') : simd ? 'simd128' : 'scalar';
      },
      (e) => {
        loaded = null; // a failed fetch may be retried
        throw new Error(`tinycnn init: the WebAssembly module did not load: ${e?.message ?? e}`, { cause: e });
      },
    );
  }
  return loaded;
}

/** Which build init() loaded: 'simd128', 'scalar', 'custom' (a module_or_path given), or null before init. */
export function loadedBuild() {
  return build;
}

/** Synchronous init from a compiled module or bytes (e.g. in a worker that was sent them). */
export function initSync(module) {
  bindings.initSync({ module });
  build ??= 'custom';
}
