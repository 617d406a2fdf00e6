// Which backend can run the network here.

/** A minimal module whose one function uses SIMD128 (i8x16.splat, i8x16.popcnt). */
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]);

export function hasWasmSimd() {
  try {
    return typeof WebAssembly === 'object' && WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

/** @returns {{id: string, label: string, detail: string}} */
export function detectBackend() {
  const simd = hasWasmSimd();
  const gpu = typeof navigator !== 'undefined' && 'gpu' in navigator;
  const detail = [
    simd ? 'WebAssembly with SIMD128: int8 kernels use 128-bit vector instructions.' : 'WebAssembly without SIMD128 support in this browser.',
    gpu ? 'The browser offers WebGPU: the backend switch appears when it has an adapter.' : '',
  ].filter(Boolean).join(' ');
  return simd
    ? { id: 'wasm-simd', label: 'wasm SIMD', detail }
    : { id: 'wasm', label: 'wasm (no SIMD)', detail };
}

/**
 * The WebGPU adapter, if the browser has one (asks navigator.gpu; never throws).
 * @returns {Promise<{label: string, fallback: boolean} | null>}
 */
export async function detectWebGpu() {
  if (typeof navigator === 'undefined' || !navigator.gpu) return null;
  try {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return null;
    const info = adapter.info ?? {};
    const label = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'WebGPU adapter';
    return { label, fallback: Boolean(adapter.isFallbackAdapter ?? info.isFallbackAdapter) };
  } catch {
    return null;
  }
}
