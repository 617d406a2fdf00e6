// Which build this engine runs. No SIMD128 build compiles where SIMD128 is missing
// (Safari before 16.4, old WebViews, V8 on a CPU without SSE4.1): those get the scalar one.

/** A module whose one function uses SIMD128 (i8x16.splat, i8x16.popcnt): valid only where SIMD128 is. */
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]);

/** Whether this engine runs WebAssembly SIMD128. */
export function simdSupported() {
  try {
    return typeof WebAssembly === 'object' && WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

/** The .wasm this engine should load, next to this module (a bundler must copy both .wasm files there). */
export function wasmUrl(simd = simdSupported()) {
  return new URL(simd ? './tinycnn_bg.wasm' : './tinycnn_scalar_bg.wasm', import.meta.url);
}
