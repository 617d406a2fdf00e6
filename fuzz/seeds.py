#!/usr/bin/env python3
"""Writes the committed seed corpus fuzz/corpus/<target>/ (deterministic, stdlib only).

    python3 fuzz/seeds.py        (after scripts/gen-malformed)

Seeds are small on purpose: the small valid models of tests/fixtures, header
mutations of them, and the malformed corpus (load_model); digits from
tests/fixtures/tiny-inputs.safetensors (run_model, preprocess); a few
arguments of each quantiser function (quant_scales). Inputs the fuzzer found
that add coverage are added next to them by `scripts/fuzz merge`; all are
replayed by tests/fuzz_corpus.rs. Running this again rewrites the seeds only.
"""

import json
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures")
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def read(*path):
    with open(os.path.join(*path), "rb") as f:
        return f.read()


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def digits():
    """The fixture's test digits, 784 bytes each."""
    b = read(FIX, "tiny-inputs.safetensors")
    n = struct.unpack("<Q", b[:8])[0]
    t = json.loads(b[8 : 8 + n])["pixels"]
    start, end = t["data_offsets"]
    data = b[8 + n + start : 8 + n + end]
    return [data[i : i + 784] for i in range(0, len(data), 784)]


def main():
    small_float = read(FIX, "small-float.safetensors")
    small_int8 = read(FIX, "small-int8.safetensors")
    ds = digits()

    # load_model: valid files, header mutations, the malformed corpus.
    write("load_model", "small-float", small_float)
    write("load_model", "small-int8", small_int8)
    write("load_model", "tiny-f16", read(FIX, "tiny-f16.safetensors"))
    write("load_model", "header-len-max", struct.pack("<Q", 2**64 - 1) + small_int8[8:])
    write("load_model", "header-len-plus-one", struct.pack("<Q", struct.unpack("<Q", small_int8[:8])[0] + 1) + small_int8[8:])
    write("load_model", "truncated", small_int8[: len(small_int8) // 2])
    mdir = os.path.join(FIX, "malformed")
    for name in sorted(os.listdir(mdir)):
        if name.endswith(".safetensors"):
            write("load_model", "malformed-" + name[: -len(".safetensors")], read(mdir, name))

    # run_model: byte 0 picks fuzz/src/lib.rs MODELS[k] (0 tiny-float, 1 small-int8, 2 deepconvnet-int8),
    # 3+ = the model follows as u32 length + bytes; the rest is pixels.
    write("run_model", "tiny-float-digit", bytes([0]) + ds[0])
    write("run_model", "small-int8-pixels", bytes([1]) + ds[1][300:336])
    write("run_model", "deepconvnet-digit", bytes([2]) + ds[2])
    write("run_model", "deepconvnet-blank", bytes([2]))
    for name, model in [("own-small-int8", small_int8), ("own-small-float", small_float)]:
        write("run_model", name, bytes([3]) + struct.pack("<I", len(model)) + model + ds[3][300:336])

    # quant_scales: byte 0 % 3 picks Multiplier::from_real (f64 + i32 accumulators),
    # activation_quantization (f32 min, f32 max) or quantize_weights (channels, f32 weights).
    write("quant_scales", "multiplier", bytes([0]) + struct.pack("<d", 0.00123) + struct.pack("<3i", 1000, -77, 2**31 - 1))
    write("quant_scales", "multiplier-large", bytes([0]) + struct.pack("<d", 3.5))
    write("quant_scales", "multiplier-tiny", bytes([0]) + struct.pack("<d", 1e-11))
    write("quant_scales", "activation", bytes([1]) + struct.pack("<2f", -1.5, 6.0))
    write("quant_scales", "weights", bytes([2, 2]) + struct.pack("<8f", 0.5, -0.25, 0.1, 0.0, 1e-3, -2e-3, 0, 0))

    # preprocess: u16 width (1 + v % 64), flags (bit 0 grayscale, bit 1 one row short), pixels.
    d = ds[4]
    rgba = b"".join(bytes([255 - v, 255 - v, 255 - v, 255]) for v in d)  # dark ink on white
    write("preprocess", "digit-rgba", struct.pack("<H", 27) + bytes([0]) + rgba)
    two = b"".join(ds[5][r * 28 : (r + 1) * 28] + ds[6][r * 28 : (r + 1) * 28] for r in range(28))
    write("preprocess", "two-digits-gray", struct.pack("<H", 55) + bytes([1]) + two)
    write("preprocess", "short-rgba", struct.pack("<H", 27) + bytes([2]) + rgba[:1000])


if __name__ == "__main__":
    main()
