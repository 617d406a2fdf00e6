"""python -m tinycnn_export MODULE:NAME -o OUT.safetensors --mean M --std S [--weights W] [--input-shape 1,1,28,28]

MODULE:NAME is an importable module and a class or function in it that,
called with no arguments, returns the `nn.Module` (e.g. `mynets:LeNet`).
--weights loads a state dict (`.safetensors`, or a `.pt`/`.pth` file read
with `torch.load(weights_only=True)`) into it first.
"""
from __future__ import annotations

import argparse
import importlib
import sys

import torch

from ._export import UnsupportedError, export


def _factory(spec: str):
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise SystemExit(f"error: '{spec}' is not MODULE:NAME (e.g. mynets:LeNet)")
    sys.path.insert(0, ".")
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tinycnn_export", description=__doc__.split("\n\n")[1])
    p.add_argument("module", metavar="MODULE:NAME")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--mean", type=float, required=True, help="input normalisation: x = (p/255 - mean)/std")
    p.add_argument("--std", type=float, required=True)
    p.add_argument("--weights", help="a state dict to load first (.safetensors, .pt, .pth)")
    p.add_argument("--input-shape", default="1,1,28,28", help="N,C,H,W of the example input (default 1,1,28,28)")
    args = p.parse_args(argv)

    net = _factory(args.module)()
    if args.weights:
        if args.weights.endswith(".safetensors"):
            from safetensors.torch import load_file
            state = load_file(args.weights)
        else:
            state = torch.load(args.weights, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    shape = [int(d) for d in args.input_shape.split(",")]
    try:
        graph = export(net, torch.zeros(shape), args.output, mean=args.mean, std=args.std)
    except UnsupportedError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}: {len(graph['nodes'])} nodes, output '{graph['output']}'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
