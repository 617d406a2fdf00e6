"""Export a float tinycnn model to ONNX (opset 17) for peer-runtime benchmarks.

    training/.venv/bin/python training/export_onnx.py --arch deepconvnet \
        --weights models/deepconvnet-float.safetensors -o /tmp/deepconvnet.onnx

The ONNX graph takes the *normalised* input `input` float32 [N,1,28,28]
(x = (p/255 - mean)/std, mean/std from the graph's `input`) and returns the
logits `logits` [N,10] (no softmax), like the tinycnn engines. N is dynamic.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", required=True, choices=sorted(models.ARCHS))
    ap.add_argument("--weights", required=True)
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--opset", type=int, default=17)
    args = ap.parse_args()

    net = models.load_float(args.arch, args.weights)
    c, h, w = (net.graph["input"][k] for k in ("channels", "height", "width"))
    x = torch.zeros(1, c, h, w)
    torch.onnx.export(net, (x,), args.out, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      opset_version=args.opset, dynamo=False)
    import onnx
    m = onnx.load(args.out)
    onnx.checker.check_model(m)
    print(f"wrote {args.out} ({os.path.getsize(args.out):,} bytes, opset {args.opset}, "
          f"{len(m.graph.node)} nodes)")


if __name__ == "__main__":
    main()
