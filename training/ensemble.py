"""Choose the shipped ensemble by validation accuracy, never by the test set.

    training/.venv/bin/python training/ensemble.py deepconvnet:models/deepconvnet-float.safetensors \
        resnet:models/resnet-float.safetensors ... [--min 3]

For the float models given (arch:path), prints each one's accuracy on the
validation split (the last 10k training images, as train.py holds them out)
and that of every ensemble of at least --min of them (mean of the softmaxes,
as `tinycnn eval --ensemble` computes it), best first. The test set is
evaluated only for the best ensemble, once, at the end: what the model card
reports.
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import models  # noqa: E402


@torch.no_grad()
def probabilities(net, images, bs=1000):
    net.eval()
    out = []
    for i in range(0, len(images), bs):
        x = net.normalise(images[i:i + bs]).contiguous(memory_format=torch.channels_last)
        out.append(torch.softmax(net(x), dim=1))
    return torch.cat(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("members", nargs="+", help="arch:path of a float model")
    ap.add_argument("--min", type=int, default=3, help="fewest members of an ensemble")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    d = data.load()
    va_x, va_y = (torch.from_numpy(a.copy()) for a in d["val"])
    te_x, te_y = (torch.from_numpy(a.copy()) for a in d["test"])

    nets, val = {}, {}
    for spec in args.members:
        arch, path = spec.split(":", 1)
        nets[path] = models.load_float(arch, path)
        val[path] = probabilities(nets[path], va_x)
        acc = (val[path].argmax(1) == va_y).float().mean().item()
        print(f"{path}: val {acc * 100:.2f}%")

    results = []
    paths = list(nets)
    for k in range(args.min, len(paths) + 1):
        for combo in itertools.combinations(paths, k):
            mean = sum(val[p] for p in combo) / k
            correct = (mean.argmax(1) == va_y).sum().item()
            results.append((correct, -k, combo))
    results.sort(reverse=True)
    for correct, k, combo in results[:10]:
        print(f"val {correct / 100:.2f}% ({correct}/10000)  {-k} members: {' '.join(os.path.basename(p) for p in combo)}")

    best = results[0][2]
    mean = sum(probabilities(nets[p], te_x) for p in best) / len(best)
    correct = (mean.argmax(1) == te_y).sum().item()
    print(f"chosen: {' '.join(best)}\ntest {correct / 100:.2f}% ({correct}/10000), float")


if __name__ == "__main__":
    main()
