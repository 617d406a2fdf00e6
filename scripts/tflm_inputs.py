"""Writes the inputs of tests/data/tflm/README.md for one MLPerf Tiny model, back to
back as raw int8, and the matching rows of TFLM's committed outputs, for
scripts/test-mcu. Pure Python (no numpy): it runs on a bare machine.

    python3 scripts/tflm_inputs.py STEM RANDOM INPUTS.bin EXPECTED.bin

STEM names tests/data/tflm/STEM.out; RANDOM is how many of the 200 random inputs
to take (the first ones); the three edge cases (all -128, all 127, all the zero
point) always follow.
"""

import json
import math
import pathlib
import sys

GAMMA, M64 = 0x9E3779B97F4A7C15, (1 << 64) - 1
RANDOM_INPUTS = 200  # the README's inputs 0..199; 200..202 are the edge cases


def splitmix64_bytes(seed, n):
    """The generator as README.md states it."""
    state, out = seed, bytearray()
    while len(out) < n:
        state = (state + GAMMA) & M64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        out += (z ^ (z >> 31)).to_bytes(8, "little")
    return bytes(out[:n])


def main(stem, random, inputs_path, expected_path):
    data = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "tflm"
    meta = json.loads((data / "arena.json").read_text())[stem]
    n_in = math.prod(meta["input"]["shape"])
    n_out = math.prod(meta["output"]["shape"])
    zero_point = meta["input"]["zero_point"][0]
    outputs = (data / f"{stem}.out").read_bytes()
    if len(outputs) != (RANDOM_INPUTS + 3) * n_out:
        sys.exit(f"{stem}.out: {len(outputs)} bytes, expected {(RANDOM_INPUTS + 3) * n_out}")
    indices = list(range(min(random, RANDOM_INPUTS))) + [RANDOM_INPUTS, RANDOM_INPUTS + 1, RANDOM_INPUTS + 2]
    edge = {RANDOM_INPUTS: -128, RANDOM_INPUTS + 1: 127, RANDOM_INPUTS + 2: zero_point}
    with open(inputs_path, "wb") as xs, open(expected_path, "wb") as ys:
        for i in indices:
            xs.write(bytes([edge[i] & 0xFF]) * n_in if i in edge else splitmix64_bytes(i, n_in))
            ys.write(outputs[i * n_out : (i + 1) * n_out])
    print(f"{stem}: {len(indices)} inputs of {n_in} int8, outputs of {n_out}")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])
