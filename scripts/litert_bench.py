#!/usr/bin/env python3
"""Latency of LiteRT (ai-edge-litert) on the four MLPerf Tiny int8 models, batch 1, one thread.

    litert_bench.py [SECONDS_PER_RUN] [KERNEL_SET ...]    (default 2.5 s, every set; run
                                                          through scripts/litert-bench)

The yardstick for tinycnn's int8 engine on this CPU, with three of LiteRT's kernel sets:
  xnnpack   the default: XNNPACK delegate (QS8 kernels) where it takes the op
  builtin   BUILTIN_WITHOUT_DEFAULT_DELEGATES: TFLite's optimized kernels (ruy, gemmlowp), no XNNPACK
  ref       BUILTIN_REF: TFLite's reference kernels (closest to TFLM's)
Each run also feeds the 203 inputs of tests/data/tflm/ and counts the output bytes that
differ from TFLM's reference outputs (XNNPACK rounds some requantisations differently).
Times are of interpreter.invoke() from Python, so they include a few microseconds of
call overhead: compare with tinycnn timed the same way, or mind the floor for tiny models.
"""
import os
import sys
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tflm_reference import MODELS, ROOT, inputs_for  # noqa: E402 (the shared input generator)

MODES = [("xnnpack", OpResolverType.AUTO), ("builtin", OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES),
         ("ref", OpResolverType.BUILTIN_REF)]
MIN_RUNS = 200


def bench(path, resolver, seconds):
    it = Interpreter(model_path=path, num_threads=1, experimental_op_resolver_type=resolver)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    delegated = sum(d["op_name"] == "DELEGATE" for d in it._get_ops_details())

    # Agreement with TFLM on the reference inputs (also serves as warm-up).
    stem = os.path.splitext(os.path.basename(path))[0]
    ref = open(os.path.join(ROOT, "tests", "data", "tflm", stem + ".out"), "rb").read()
    got = bytearray()
    xs = inputs_for(list(inp["shape"]), int(inp["quantization"][1]))
    for x in xs:
        it.set_tensor(inp["index"], x)
        it.invoke()
        got += it.get_tensor(out["index"]).astype(np.int8).tobytes()
    diff = np.frombuffer(bytes(got), np.int8).astype(int) - np.frombuffer(ref, np.int8)
    inputs_differing = int((diff.reshape(len(xs), -1) != 0).any(axis=1).sum())

    # Time invoke() on input 0: enough runs to fill `seconds`, at least MIN_RUNS.
    it.set_tensor(inp["index"], xs[0])
    t0 = time.perf_counter()
    for _ in range(20):
        it.invoke()
    per_run = (time.perf_counter() - t0) / 20
    runs = max(MIN_RUNS, min(100_000, int(seconds / per_run)))
    us = np.empty(runs)
    for k in range(runs):
        t = time.perf_counter_ns()
        it.invoke()
        us[k] = (time.perf_counter_ns() - t) / 1e3
    p10, p50, p90 = np.percentile(us, [10, 50, 90])
    return runs, p10, p50, p90, delegated, inputs_differing, int(np.abs(diff).max())


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.5
    wanted = sys.argv[2:] or [name for name, _ in MODES]
    unknown = sorted(set(wanted) - {name for name, _ in MODES})
    if unknown:
        sys.exit(f"litert_bench.py: unknown kernel set(s) {', '.join(unknown)}: xnnpack, builtin, ref")
    import ai_edge_litert
    print(f"LiteRT {getattr(ai_edge_litert, '__version__', '?')}, num_threads=1, batch 1, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"{'model':<24}{'kernels':<9}{'runs':>7}{'p10 µs':>10}{'median µs':>11}{'p90 µs':>10}"
          f"  {'delegates':>9}  vs TFLM (inputs differing /203, max |diff|)")
    for path in sorted(f for f in os.listdir(MODELS) if f.endswith(".tflite")):
        for name, resolver in (m for m in MODES if m[0] in wanted):
            runs, p10, p50, p90, dlg, ndiff, maxd = bench(os.path.join(MODELS, path), resolver, seconds)
            print(f"{path[:-7]:<24}{name:<9}{runs:>7}{p10:>10.1f}{p50:>11.1f}{p90:>10.1f}"
                  f"  {dlg:>9}  {ndiff:>3}, {maxd}", flush=True)


if __name__ == "__main__":
    main()
