// tests/data/tflm/README.md's input tensors, as TFLite Micro's reference outputs were made
// from them: splitmix64 bytes per input index (200 inputs), then all −128, all 127 and
// all the zero point. Shared by tests/node/tflite.test.mjs and benches/peers/mlperf-ort.mjs.

/** How many input tensors the reference outputs hold per model. */
export const TFLM_INPUTS = 203;

/** The 203 int8 tensors of `len` values back to back. */
export function tflmInputs(len, zeroPoint) {
  const mask = (1n << 64n) - 1n;
  const all = new Int8Array(TFLM_INPUTS * len);
  for (let seed = 0n; seed < 200n; seed++) {
    const bytes = new Uint8Array(Math.ceil(len / 8) * 8);
    const view = new DataView(bytes.buffer);
    let state = seed;
    for (let i = 0; i < bytes.length; i += 8) {
      state = (state + 0x9e3779b97f4a7c15n) & mask;
      let z = state;
      z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & mask;
      z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & mask;
      view.setBigUint64(i, z ^ (z >> 31n), true);
    }
    all.set(new Int8Array(bytes.buffer, 0, len), Number(seed) * len);
  }
  all.fill(-128, 200 * len, 201 * len);
  all.fill(127, 201 * len, 202 * len);
  all.fill(zeroPoint, 202 * len, 203 * len);
  return all;
}
