/** Whether this engine runs WebAssembly SIMD128. */
export function simdSupported(): boolean;
/** The .wasm init() loads here: the SIMD128 build, or the scalar one where SIMD128 is missing. */
export function wasmUrl(simd?: boolean): URL;
