#!/usr/bin/env python3
"""Reference outputs of TensorFlow Lite Micro's interpreter for the MLPerf Tiny models and
TFLM's own example models (models/tflm-examples/).

    tflm_reference.py generate OUT_DIR   writes OUT_DIR/<stem>.out, <stem>.logits (models
                                         ending in SOFTMAX), README.md, arena.json
    tflm_reference.py check DIR          regenerates in memory, compares byte for byte
    tflm_reference.py ops                prints each model's operators with their options

Run with the python of scripts/tflm-venv (pinned tflite-micro). The inputs are generated,
not stored, so that a Rust test can regenerate them (splitmix64, see README_TEXT) and
compare tinycnn's int8 engine with TFLM's reference kernels on every model. A final
SOFTMAX saturates on these inputs (vww_96_int8: 6 distinct outputs of 203), so for such
models its int8 input, the logits, is written too, read with TFLM's kPreserveAllTensors.
"""
import glob
import json
import os
import re
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_DIRS = [os.path.join(ROOT, "models", d) for d in ("mlperf-tiny", "tflm-examples")]
MODELS = MODEL_DIRS[0]  # MLPerf Tiny's alone (scripts/litert_bench.py)


def model_paths():
    """Every .tflite file of MODEL_DIRS, sorted by file name."""
    paths = [p for d in MODEL_DIRS for p in glob.glob(os.path.join(d, "*.tflite"))]
    return sorted(paths, key=os.path.basename)

# Larger than any of the four needs (MobileNet: about 104 KB); print_allocations reports
# what was actually used, which is what arena.json records.
ARENA_SIZE = 1 << 20
RANDOM_INPUTS = 200  # then all -128, all 127, all zero point: 203 in all


def tflm():
    """TFLM's Python runtime, imported on first use: litert_bench.py imports this file for
    the input generator in a venv without tflite-micro."""
    from tflite_micro.python.tflite_micro import runtime
    return runtime


M64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15


def splitmix64_bytes(seed, n):
    """n bytes of splitmix64(seed): next() values as 8 little-endian bytes each, truncated.

    Vectorised: after k+1 calls the state is seed + (k+1)*GAMMA mod 2^64, and numpy's
    uint64 arithmetic wraps mod 2^64 like the spec. splitmix64_scalar is the spec itself.
    """
    k = np.arange(1, (n + 7) // 8 + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + k * np.uint64(GAMMA)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return z.astype("<u8").tobytes()[:n]


def splitmix64_scalar(seed, n):
    """The generator exactly as README.md states it (checks the vectorised one)."""
    state, out = seed, bytearray()
    while len(out) < n:
        state = (state + GAMMA) & M64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        out += (z ^ (z >> 31)).to_bytes(8, "little")
    return bytes(out[:n])


def inputs_for(shape, zero_point):
    n = int(np.prod(shape))
    xs = [np.frombuffer(splitmix64_bytes(i, n), np.int8) for i in range(RANDOM_INPUTS)]
    xs += [np.full(n, -128, np.int8), np.full(n, 127, np.int8), np.full(n, zero_point, np.int8)]
    return [x.reshape(shape) for x in xs]


def capture_fd2(fn):
    """Runs fn, returns what it wrote to file descriptor 2: TFLM's MicroPrintf writes
    there from C++, past Python's sys.stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            fn()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        return tmp.read().decode()


def details(d):
    q = d["quantization_parameters"]
    return {"shape": [int(s) for s in d["shape"]], "dtype": np.dtype(d["dtype"]).name,
            "scale": [float(s) for s in q["scales"]],
            "zero_point": [int(z) for z in q["zero_points"]]}


def op_list(path):
    """(name, builtin options, [input shapes, output shapes]) of each operator in
    execution order, read from the flatbuffer with the schema TFLM ships."""
    schema = tflm().schema_fb
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    with open(path, "rb") as f:
        model = tflm().convert_bytearray_to_object(bytearray(f.read()))
    # The two enum-valued options that matter here, by name rather than number.
    enums = {"fusedActivationFunction": schema.ActivationFunctionType, "padding": schema.Padding}
    enums = {f: {v: k for k, v in vars(e).items() if not k.startswith("_")} for f, e in enums.items()}
    ops = []
    for op in model.subgraphs[0].operators:
        code = tflm().get_builtin_code_from_operator_code(model.operatorCodes[op.opcodeIndex])
        opts = getattr(op.builtinOptions, "__dict__", {})
        opts = {k: enums[k][v] if k in enums else v for k, v in opts.items() if v is not None}
        tensors = model.subgraphs[0].tensors
        shapes = [["x".join(str(int(d)) for d in tensors[t].shape) for t in ts if t >= 0]
                  for ts in (op.inputs, op.outputs)]
        ops.append((names[code], opts, shapes))
    return ops


def softmax_input(path):
    """If the model's last operator is SOFTMAX: the arena.json "logits" entry for its input
    tensor (index in subgraph 0, name, operator that writes it, shape, dtype, scale, zero
    point, SOFTMAX's beta), read from the flatbuffer; else None."""
    schema = tflm().schema_fb
    with open(path, "rb") as f:
        model = tflm().convert_bytearray_to_object(bytearray(f.read()))
    graph = model.subgraphs[0]
    code = lambda op: tflm().get_builtin_code_from_operator_code(model.operatorCodes[op.opcodeIndex])
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    last = graph.operators[-1]
    if code(last) != schema.BuiltinOperator.SOFTMAX:
        return None
    assert list(last.outputs) == list(graph.outputs), (path, "SOFTMAX is not the model output")
    index = int(last.inputs[0])
    producers = [op for op in graph.operators if index in op.outputs]
    assert len(producers) == 1, (path, index, "SOFTMAX input is not one operator's output")
    t = graph.tensors[index]
    assert t.type == schema.TensorType.INT8, (path, index, t.type)
    return {"tensor": index, "name": t.name.decode(), "producer": names[code(producers[0])],
            "shape": [int(d) for d in t.shape], "dtype": "int8",
            "scale": [float(v) for v in t.quantization.scale],
            "zero_point": [int(v) for v in t.quantization.zeroPoint],
            "beta": float(last.builtinOptions.beta)}


# How far (in output steps of 1/256) TFLM's int8 SOFTMAX may be from the float softmax of
# its dequantised input; a wrong tensor read as the logits is far off.
SOFTMAX_TOLERANCE = 2


def softmax_error(z, y, logits):
    """Largest |TFLM's softmax output y - (round(256 * softmax(beta * dequantised z)) - 128)|,
    in output steps."""
    v = (z.astype(np.float64).ravel() - logits["zero_point"][0]) * logits["scale"][0] * logits["beta"]
    e = np.exp(v - v.max())
    want = np.clip(np.round(e / e.sum() * 256) - 128, -128, 127)
    return int(np.abs(np.frombuffer(y, np.int8).astype(np.int64) - want).max())


def read_logits(path, xs, ys, out):
    """(203 softmax inputs as bytes, arena.json "logits" entry) for a model ending in
    SOFTMAX, else (None, None). A second interpreter, in kPreserveAllTensors mode
    (GetTensor works only there, print_allocations only in the default mode), runs the same
    inputs; its outputs must equal ys byte for byte, and each output must be the softmax of
    the logits read within SOFTMAX_TOLERANCE (so the tensor read is what feeds SOFTMAX)."""
    logits = softmax_input(path)
    if logits is None:
        return None, None
    rt = tflm()
    keep = rt.Interpreter.from_file(path, arena_size=ARENA_SIZE,
                                    intrepreter_config=rt.InterpreterConfig.kPreserveAllTensors)
    name = os.path.basename(path)
    # Int8 SOFTMAX output quantisation, as TFLM requires: scale 1/256, zero point -128.
    assert out["scale"] == [1 / 256] and out["zero_point"] == [-128], (name, out)
    assert logits["shape"] == out["shape"], (name, logits, out)

    def run(x):
        keep.set_input(x, 0)
        keep.invoke()
        y = np.array(keep.get_output(0), dtype=np.int8).tobytes()  # copy, own buffer
        t = keep.GetTensor(logits["tensor"], 0)
        assert np.dtype(t["dtype"]) == np.int8, (name, t)
        assert [int(d) for d in t["shape"]] == logits["shape"], (name, t)
        return y, np.array(t["tensor_data"], dtype=np.int8)

    rows, worst = [], 0
    for i, (x, y) in enumerate(zip(xs, ys)):
        y_keep, z = run(x)
        if y_keep != y:
            sys.exit(f"tflm_reference: {name}: input {i}: kPreserveAllTensors gives other "
                     "outputs than the default interpreter")
        worst = max(worst, softmax_error(z, y, logits))
        rows.append(z.tobytes())
    if worst > SOFTMAX_TOLERANCE:
        sys.exit(f"tflm_reference: {name}: the softmax of tensor {logits['tensor']} is up to "
                 f"{worst} steps from TFLM's output: not the SOFTMAX input?")
    if run(xs[0])[1].tobytes() != rows[0]:
        sys.exit(f"tflm_reference: {name}: input 0 gives other logits after other inputs")
    return b"".join(rows), logits


def run_model(path):
    """(203 outputs as bytes, 203 logits as bytes or None, arena.json entry) for one model."""
    interp = tflm().Interpreter.from_file(path, arena_size=ARENA_SIZE)
    inp, out = details(interp.get_input_details(0)), details(interp.get_output_details(0))
    assert inp["dtype"] == "int8" and out["dtype"] == "int8", (path, inp, out)

    def run(it, x):
        it.set_input(x, 0)
        it.invoke()
        return np.array(it.get_output(0), dtype=np.int8).tobytes()  # copy, own buffer

    xs = inputs_for(inp["shape"], inp["zero_point"][0])
    ys = [run(interp, x) for x in xs]
    n_out = int(np.prod(out["shape"]))
    assert all(len(y) == n_out for y in ys)
    # TFLM keeps no state for these ops; make sure: input 0 again on the same interpreter
    # after 202 others, and on a fresh one, gives the same bytes.
    again = run(interp, xs[0])
    fresh = run(tflm().Interpreter.from_file(path, arena_size=ARENA_SIZE), xs[0])
    if again != ys[0] or fresh != ys[0]:
        sys.exit(f"tflm_reference: {os.path.basename(path)}: input 0 gives other outputs "
                 "after other inputs or on a fresh interpreter: TFLM is not stateless here")
    text = capture_fd2(interp.print_allocations)
    arena = {k: int(v) for k, v in re.findall(r"Arena allocation (total|head|tail) (\d+) bytes", text)}
    assert set(arena) == {"total", "head", "tail"}, text
    entry = {"arena_bytes": arena, "arena_detail": [l for l in text.splitlines() if l.strip()],
             "input": inp, "output": out}
    logits, entry["logits"] = read_logits(path, xs, ys, out)
    if logits is None:
        del entry["logits"]
    entry["ops"] = [op[0] for op in op_list(path)]
    return b"".join(ys), logits, entry


README_TEXT = """\
# TFLM reference outputs for the MLPerf Tiny models and TFLM's example models

Generated by `scripts/tflm_reference.py` with TensorFlow Lite Micro's Python interpreter
(pip package `tflite-micro`, exact versions in `scripts/tflm-requirements.txt`), from the
models in `models/mlperf-tiny/` and `models/tflm-examples/`. Do not edit by hand. To regenerate:

    target/venv-tflm/bin/python scripts/tflm_reference.py generate tests/data/tflm

(`scripts/tflm-venv` creates that venv and prints its python; `scripts/tflm-check`
regenerates in memory and compares with these files, as CI does.)

## Files

- `<stem>.out` for each `<stem>.tflite` there: the int8 outputs of TFLM for
  the 203 inputs below, back to back, raw bytes, no header: output i is bytes
  `[i*N, (i+1)*N)` with N the output's element count (row-major, shape in `arena.json`).
{files}
- `<stem>.logits` for each model whose last operator is SOFTMAX: the int8 tensor that is
  the SOFTMAX's input (the FULLY_CONNECTED output) for the same 203 inputs, laid out like
  `.out` (N bytes per input, N the output's element count, which the SOFTMAX keeps). The
  SOFTMAX saturates on these inputs (`vww_96_int8.out` has 6 distinct rows of 203), so
  these are the stronger comparison. Quantisation (scale, zero point) and tensor index in
  `arena.json` under `logits`.
{logits}
- `arena.json`: per model, TFLM's arena use from `print_allocations()` (total, head =
  activations, tail = persistent data, arena of {arena} bytes offered), the lines it
  printed, the input and output shape, dtype, scale and zero point, for models ending in
  SOFTMAX the same for the logits (`logits`: tensor index in subgraph 0, name, the
  operator that writes it, shape, dtype, scale, zero point, the SOFTMAX's beta), and the
  operators in execution order.

## Inputs

Each model has one int8 input of E elements; inputs are generated, not stored:

- inputs 0..199: the first E bytes of splitmix64 with seed = the input index i,
  reinterpreted as int8:

      state = seed (u64)
      next(): state = (state + 0x9E3779B97F4A7C15) mod 2^64; z = state;
              z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) mod 2^64;
              z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) mod 2^64;
              return z ^ (z >> 31)
      bytes: next() as 8 little-endian bytes each, concatenated, truncated to E

- input 200: every element -128
- input 201: every element 127
- input 202: every element the input's zero point

Each is the input tensor in row-major order (reshaped to the input's shape), set with
`set_input(x, 0)`, then `invoke()`, `get_output(0)`, on one interpreter per model (the
script checks that input 0 gives the same bytes again after the others and on a fresh
interpreter).

The logits come from a second interpreter per model, created with
`intrepreter_config=InterpreterConfig.kPreserveAllTensors` (in the default mode TFLM
reuses activation memory and refuses `GetTensor`; in this mode it cannot
`print_allocations`, hence two): the same `set_input`, `invoke()`, then
`GetTensor(tensor, 0)["tensor_data"]` with the SOFTMAX's input tensor index read from the
model's flatbuffer. The script checks that this interpreter's `get_output(0)` equals
`.out` byte for byte for all 203 inputs, that each output is within {tolerance} steps (of
1/256) of the float softmax of the dequantised logits row, and that input 0 gives the same
logits again after the others.
"""


def generate():
    """{file name: bytes} for everything generate writes."""
    files, arena, lines, logit_lines = {}, {}, [], []
    for path in model_paths():
        stem = os.path.splitext(os.path.basename(path))[0]
        files[stem + ".out"], logits, arena[stem] = run_model(path)
        n = int(np.prod(arena[stem]["output"]["shape"]))
        lines.append(f"  - `{stem}.out`: 203 × {n} bytes")
        if logits is not None:
            files[stem + ".logits"] = logits
            t = arena[stem]["logits"]
            logit_lines.append(f"  - `{stem}.logits`: 203 × {n} bytes, tensor {t['tensor']} "
                               f"(`{t['name']}`, written by {t['producer']})")
    files["arena.json"] = (json.dumps(arena, indent=2) + "\n").encode()
    files["README.md"] = README_TEXT.format(files="\n".join(lines), logits="\n".join(logit_lines),
                                            arena=ARENA_SIZE, tolerance=SOFTMAX_TOLERANCE).encode()
    return files


def check(d, files):
    """Exit 1 naming the first difference, else print what was compared."""
    failed = False
    stored = {os.path.basename(p) for ext in ("*.out", "*.logits") for p in glob.glob(os.path.join(d, ext))}
    for name in sorted(stored - set(files)):
        stem, ext = os.path.splitext(name)
        why = "does not end in SOFTMAX" if ext == ".logits" and stem + ".out" in files else "does not exist"
        print(f"tflm-check: {d}/{name}: model {stem}.tflite {why}")
        failed = True
    for name, want in files.items():
        path = os.path.join(d, name)
        if not os.path.exists(path):
            print(f"tflm-check: {path} missing")
            failed = True
            continue
        have = open(path, "rb").read()
        if have == want:
            continue
        failed = True
        stem, ext = os.path.splitext(name)
        if ext in (".out", ".logits"):
            what = "output" if ext == ".out" else "logits"
            n = len(want) // (RANDOM_INPUTS + 3)
            if len(have) != len(want):
                print(f"tflm-check: model {stem}: {path} has {len(have)} bytes, TFLM gives {len(want)}")
                continue
            b = next(i for i in range(len(want)) if have[i] != want[i])
            i8 = lambda byte: byte - 256 * (byte > 127)
            print(f"tflm-check: model {stem}: input {b // n}, {what} byte {b % n} differs: "
                  f"file has {i8(have[b])}, TFLM gives {i8(want[b])}")
        else:
            print(f"tflm-check: {path} differs from what generate writes")
    if failed:
        print(f"tflm-check: FAILED; regenerate with: target/venv-tflm/bin/python "
              f"scripts/tflm_reference.py generate {d}")
        sys.exit(1)
    outs = [n for n in files if n.endswith(".out")]
    logits = [n for n in files if n.endswith(".logits")]
    total = sum(len(files[n]) for n in outs)
    total_logits = sum(len(files[n]) for n in logits)
    print(f"tflm-check: {len(outs)} models, {len(outs) * (RANDOM_INPUTS + 3)} inputs, "
          f"{total} output bytes and {total_logits} logits bytes ({len(logits)} models "
          f"ending in SOFTMAX) equal")


def main():
    assert splitmix64_bytes(7, 37) == splitmix64_scalar(7, 37)
    # Known answer: the first splitmix64 output for seed 0 is 0xE220A8397B1DCDAF.
    assert splitmix64_bytes(0, 8) == (0xE220A8397B1DCDAF).to_bytes(8, "little")
    if len(sys.argv) == 3 and sys.argv[1] == "generate":
        os.makedirs(sys.argv[2], exist_ok=True)
        for name, data in generate().items():
            with open(os.path.join(sys.argv[2], name), "wb") as f:
                f.write(data)
        print(f"tflm_reference: wrote {sys.argv[2]}")
    elif len(sys.argv) == 3 and sys.argv[1] == "check":
        check(sys.argv[2], generate())
    elif len(sys.argv) == 2 and sys.argv[1] == "ops":
        for path in model_paths():
            print(os.path.basename(path))
            for i, (name, opts, (ins, outs)) in enumerate(op_list(path)):
                print(f"  {i:2} {name} {', '.join(ins)} -> {', '.join(outs)} {opts}")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
