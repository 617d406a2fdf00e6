"""Trains, exports and records the PyTorch side of tests/pytorch_export.rs.

    scripts/test-pytorch-export          # the documented command (venv, this, the Rust test)
    python python/tests/make_fixtures.py [--epochs 2] [--out tests/fixtures/pytorch-export]

For each architecture of archs.py it writes, with `tinycnn_export.export`:

- `<arch>-random.safetensors`: random weights, batch norms given random
  statistics and affine terms (so that they are not the identity);
- `<arch>-trained.safetensors`: trained on the first 50,000 MNIST training
  digits for `--epochs` epochs (Adam, batch 128, seed 0), with the
  architecture's own input normalisation;

and `outputs.safetensors`: `pixels` U8 [16, 1, 28, 28] (8 random images,
then MNIST test digits 0–7), PyTorch's outputs on them for every file
(`<file stem>` F32 [16, 10], the module's own output: probabilities for the
one that ends in softmax, scores otherwise), and `<arch>-trained.top1` U8
[10000], PyTorch's predicted class of every MNIST test digit. The metadata
`pytorch` holds the versions and each trained net's test accuracy.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "training"))
sys.path.insert(0, HERE)

import tinycnn_export  # noqa: E402
from archs import ARCHS  # noqa: E402
from data import load  # noqa: E402  (training/data.py: data/mnist IDX files)


def normalise(pixels: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """What FORMAT.md says the engine does: x = (p/255 − mean)/std, in f32."""
    return (pixels.to(torch.float32) / 255.0 - mean) / std


def randomise_batch_norms(net: nn.Module, gen: torch.Generator):
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.rand(c, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=gen) + 0.5)
            m.bias.data.copy_((torch.rand(c, generator=gen) - 0.5) * 0.6)


def train(net: nn.Module, mean: float, std: float, images, labels, epochs: int, seed: int) -> float:
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    steps = epochs * (len(images) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=4e-3, total_steps=steps)
    x_all, y_all = torch.from_numpy(images), torch.from_numpy(labels).long()
    t0 = time.time()
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(images), generator=gen)
        for i in range(0, len(images) - 127, 128):
            idx = order[i:i + 128]
            out = net(normalise(x_all[idx], mean, std))
            # The functional net returns probabilities (it ends in softmax): train on their log.
            loss = nn.functional.nll_loss(torch.log(out.clamp_min(1e-12)), y_all[idx]) if isinstance(
                net, ARCHS["functional"][0]) else nn.functional.cross_entropy(out, y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return time.time() - t0


@torch.no_grad()
def predict(net, mean, std, images) -> torch.Tensor:
    net.eval()
    out = [net(normalise(torch.from_numpy(images[i:i + 1000]), mean, std)) for i in range(0, len(images), 1000)]
    return torch.cat(out)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "pytorch-export"))
    p.add_argument("--only", help="comma-separated architectures (default: all)")
    args = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    os.makedirs(args.out, exist_ok=True)
    data = load()
    (train_x, train_y), (test_x, test_y) = data["train"], data["test"]

    gen = torch.Generator().manual_seed(1234)
    pixels = torch.cat([
        torch.randint(0, 256, (8, 1, 28, 28), generator=gen, dtype=torch.uint8),
        torch.from_numpy(test_x[:8]),
    ])
    example = torch.zeros(1, 1, 28, 28)
    tensors = {"pixels": pixels.contiguous()}
    report = {"torch": torch.__version__, "epochs": args.epochs, "accuracy": {}, "train_seconds": {}}

    names = args.only.split(",") if args.only else list(ARCHS)
    for name in names:
        ctor, mean, std = ARCHS[name]
        torch.manual_seed(0)
        net = ctor()
        randomise_batch_norms(net, gen)
        stem = f"{name}-random"
        tinycnn_export.export(net, example, os.path.join(args.out, stem + ".safetensors"), mean=mean, std=std)
        tensors[stem] = predict(net, mean, std, pixels.numpy()).contiguous()

        torch.manual_seed(0)
        net = ctor()
        seconds = train(net, mean, std, train_x, train_y, args.epochs, seed=0)
        stem = f"{name}-trained"
        tinycnn_export.export(net, example, os.path.join(args.out, stem + ".safetensors"), mean=mean, std=std)
        tensors[stem] = predict(net, mean, std, pixels.numpy()).contiguous()
        top1 = predict(net, mean, std, test_x).argmax(1).to(torch.uint8)
        tensors[stem + ".top1"] = top1.contiguous()
        acc = float((top1.numpy() == test_y).mean())
        report["accuracy"][name] = acc
        report["train_seconds"][name] = round(seconds, 1)
        n_params = sum(p.numel() for p in net.parameters())
        print(f"{name:12s} params {n_params:7d}  trained {seconds:6.1f} s  PyTorch test accuracy {acc:.4f}", flush=True)

    save_file(tensors, os.path.join(args.out, "outputs.safetensors"), metadata={"pytorch": json.dumps(report)})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
