"""ONNX models of the shipped DeepConvNet for the peer benchmarks (benches/peers/run).

    python benches/peers/export.py OUT_DIR [--calib 1000]

Writes into OUT_DIR (git-ignored; the run script passes $CARGO_TARGET_DIR/peers):

- deepconvnet-fp32.onnx: models/deepconvnet-float.safetensors through
  training/export_onnx.py (opset 17; input `input` float32 [N,1,28,28], normalised
  x = (p/255 - mean)/std; output `logits` [N,10]).
- deepconvnet-int8.onnx: the same, statically quantised by onnxruntime's
  quantiser in QOperator format (QLinearConv / QLinearMatMul ...), per-channel
  int8 weights, uint8 activations (onnxruntime's recommended U8S8 for x86),
  MinMax calibration on the first --calib MNIST *training* digits
  (data/mnist/train-images-idx3-ubyte, scripts/fetch-mnist), as tinycnn's own
  `tinycnn quantize` calibrates.

Needs torch (training/.venv), onnx and onnxruntime. Files newer than their inputs
are kept.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "training"))
MEAN, STD = 0.1307, 0.3081


def fresh(out: str, *inputs: str) -> bool:
    return os.path.exists(out) and all(os.path.getmtime(out) >= os.path.getmtime(i) for i in inputs)


def train_digits(n: int) -> np.ndarray:
    path = os.path.join(ROOT, "data/mnist/train-images-idx3-ubyte")
    raw = np.fromfile(path, dtype=np.uint8)
    assert int.from_bytes(raw[:4].tobytes(), "big") == 0x0803, f"{path}: not an IDX image file"
    pixels = raw[16:16 + n * 784].reshape(n, 1, 28, 28).astype(np.float32)
    return (pixels / 255.0 - MEAN) / STD


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--calib", type=int, default=1000, help="training digits for calibration")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    weights = os.path.join(ROOT, "models/deepconvnet-float.safetensors")
    fp32 = os.path.join(args.out, "deepconvnet-fp32.onnx")
    int8 = os.path.join(args.out, "deepconvnet-int8.onnx")

    if not fresh(fp32, weights, __file__):
        subprocess.run([sys.executable, os.path.join(ROOT, "training/export_onnx.py"), "--arch", "deepconvnet",
                        "--weights", weights, "-o", fp32], check=True)

    if not fresh(int8, fp32, __file__):
        from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                              QuantType, quantize_static)
        from onnxruntime.quantization.shape_inference import quant_pre_process

        class Digits(CalibrationDataReader):
            def __init__(self, x: np.ndarray):
                self.batches = iter([{"input": x[i:i + 1]} for i in range(len(x))])

            def get_next(self):
                return next(self.batches, None)

        pre = os.path.join(args.out, "deepconvnet-fp32-pre.onnx")
        quant_pre_process(fp32, pre)
        quantize_static(pre, int8, Digits(train_digits(args.calib)), quant_format=QuantFormat.QOperator,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        import onnx
        ops = sorted({n.op_type for n in onnx.load(int8).graph.node})
        print(f"wrote {int8} ({os.path.getsize(int8):,} bytes; ops: {', '.join(ops)})")

    # Sanity: onnxruntime (Python) accuracy of both on the first 1000 test digits.
    import onnxruntime as ort
    raw = np.fromfile(os.path.join(ROOT, "data/mnist/t10k-images-idx3-ubyte"), dtype=np.uint8)
    labels = np.fromfile(os.path.join(ROOT, "data/mnist/t10k-labels-idx1-ubyte"), dtype=np.uint8)[8:8 + 1000]
    x = ((raw[16:16 + 1000 * 784].reshape(1000, 1, 28, 28).astype(np.float32) / 255.0) - MEAN) / STD
    for path in (fp32, int8):
        s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        pred = s.run(None, {"input": x})[0].argmax(1)
        print(f"{os.path.basename(path)}: onnxruntime {ort.__version__} (Python) "
              f"{(pred == labels).mean() * 100:.1f}% on the first 1000 test digits")


if __name__ == "__main__":
    main()
