// Which backend can run the network here.

// The package's own test, so the badge names the build pkg/index.js loads.
import { simdSupported } from '../pkg/build.js';

/** @returns {{id: string, label: string, detail: string}} */
export function detectBackend() {
  const simd = simdSupported();
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
