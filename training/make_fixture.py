"""Write the float-engine test fixtures into tests/fixtures/.

    training/.venv/bin/python training/make_fixture.py

Files (all regenerated deterministically, seed 1234):

- tiny-float.safetensors  F32 weights (+ I64 `num_batches_tracked`, which a
                          loader must accept and ignore) and the graph below
- tiny-f16.safetensors    same weights as F16
- tiny-bf16.safetensors   same weights as BF16
- tiny-inputs.safetensors `pixels` U8 [8,1,28,28] (rows 0-3 random bytes,
                          rows 4-7 the first four MNIST test digits) and
                          `logits_f32`, `logits_f16`, `logits_bf16` F32 [8,10]
- deepconvnet-graph.json  the graph `tinycnn import --arch deepconvnet` attaches

The tiny model is random-initialised (not trained) and uses every float op:
conv2d (stride 2 + padding, `relu: true`, bias-less), batchnorm (eps 1e-3,
non-trivial running stats), relu, add (2 and 3 inputs, with and without relu),
maxpool2d (kernel 3 stride 2 padding 1), avgpool2d (kernel 3 stride 1 pad 1,
and kernel 2 pad 1 with the default stride; count_include_pad=True), concat,
global_avgpool, flatten, dense (`relu: true`, on a flat vector and on a
C x 1 x 1 tensor), dropout, softmax as output. Input mean 0.25, std 0.4.

The expected logits are what PyTorch computes in float32, eval mode:

    import torch, torch.nn.functional as F
    x = (torch.tensor(pixels, dtype=torch.float32) / 255 - 0.25) / 0.4
    # then, node by node (models.GraphNet.forward):
    # conv2d    F.conv2d(x, w, b, stride, padding) (+ F.relu if relu)
    # batchnorm F.batch_norm(x, running_mean, running_var, weight, bias, False, 0, eps)
    # maxpool2d F.max_pool2d(x, k, s, p)         (padding is -inf)
    # avgpool2d F.avg_pool2d(x, k, s, p, count_include_pad=True)
    # global_avgpool x.mean((2, 3), keepdim=True)
    # dense     F.linear(x.flatten(1), w, b) (+ F.relu if relu)
    # add       sum of inputs (+ F.relu if relu);  concat torch.cat(xs, 1)
    # softmax   not applied: logits_* are the softmax node's input

For logits_f16 / logits_bf16 every float tensor is first rounded to f16 / bf16
and cast back to f32 (what a loader does: `w.half().float()`), then the same
f32 forward runs. Compare with a tolerance of ~1e-4 relative to max |logit|.
"""
from __future__ import annotations

import json
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fixtures")
SEED = 1234


def tiny() -> models.GraphNet:
    g = models.GraphBuilder(1, 28, 28, mean=0.25, std=0.4)
    x = g.conv("c1", "input", 8, 3, stride=2, padding=1)           # 8x14x14
    x = g.batchnorm("bn1", x, eps=1e-3)
    r1 = g.relu("r1", x)
    c2 = g.conv("c2", r1, 8, 3, padding=1, relu=True)              # relu fused
    c3 = g.conv("c3", c2, 8, 3, padding=1, bias=False)             # no bias tensor
    a1 = g.add("add1", [c3, r1])                                   # can be < 0
    mp = g.maxpool("mp1", a1, 3, stride=2, padding=1)              # 8x7x7, -inf padding matters
    ba = g.conv("ca", mp, 4, 1, relu=True)                         # 4x7x7
    ap = g.avgpool("ap1", mp, 3, stride=1, padding=1)              # 8x7x7
    bb = g.conv("cb", ap, 4, 1)                                    # 4x7x7
    mix = g.add("mix", [ba, bb], relu=True)
    cat = g.concat("cat", [mix, bb, mp])                           # 16x7x7
    c4 = g.conv("c4", cat, 12, 3, relu=True)                       # 12x5x5
    ap2 = g.avgpool("ap2", c4, 2, padding=1)                       # 12x3x3, default stride
    fl = g.flatten("flat", ap2)                                    # 108
    f1 = g.dense("fc1", fl, 16, relu=True)
    dr = g.dropout("drop", f1, 0.5)
    f2 = g.dense("fc2", dr, 10)
    gp = g.global_avgpool("gap", c4)                               # 12x1x1
    fg = g.dense("fcg", gp, 10, bias=False)
    f3 = g.dense("fc3", f1, 10)
    out = g.add("add2", [f2, fg, f3])                              # 3 inputs, no relu
    g.softmax("softmax", out)
    net = g.build("tiny")
    with torch.no_grad():
        for name, m in net.named_modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.rand(c) + 0.5)
                m.bias.copy_(torch.randn(c) * 0.3)
                m.running_mean.copy_(torch.randn(c) * 0.5)
                m.running_var.copy_(torch.rand(c) * 1.5 + 0.25)
                m.num_batches_tracked.fill_(123)
            elif isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                # a bit larger than PyTorch's default init so logits are O(1)
                m.weight.mul_(2.0)
                if m.bias is not None:
                    m.bias.copy_(torch.randn_like(m.bias) * 0.2)
    return net.eval()


def graph_json_pretty(graph) -> str:
    """JSON with one node per line."""
    head = {k: v for k, v in graph.items() if k != "nodes"}
    lines = ",\n".join("    " + json.dumps(n) for n in graph["nodes"])
    body = json.dumps(head, indent=2)[:-2]
    return body + ',\n  "nodes": [\n' + lines + "\n  ]\n}\n"


def main():
    torch.manual_seed(SEED)
    net = tiny()
    os.makedirs(OUT, exist_ok=True)
    meta = {"tinycnn": net.graph_json()}
    sd = {k: v.detach().contiguous().clone() for k, v in net.state_dict().items()}

    # inputs: 4 random byte images + the first 4 MNIST test digits (if present)
    gen = torch.Generator().manual_seed(SEED)
    pixels = torch.randint(0, 256, (8, 1, 28, 28), generator=gen, dtype=torch.uint8)
    try:
        import data
        ex, _ = data.load()["test"]
        pixels[4:] = torch.from_numpy(ex[:4].copy())
    except FileNotFoundError:
        print("warning: no MNIST files, using random bytes only", file=sys.stderr)

    def cast(dtype):
        return {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in sd.items()}

    tensors = {"pixels": pixels}
    for tag, dtype in (("f32", torch.float32), ("f16", torch.float16), ("bf16", torch.bfloat16)):
        w = cast(dtype)
        fname = "tiny-float.safetensors" if tag == "f32" else f"tiny-{tag}.safetensors"
        save_file(w, os.path.join(OUT, fname), metadata=meta)
        m = tiny()
        m.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in w.items()})
        m.eval()
        with torch.no_grad():
            tensors[f"logits_{tag}"] = m(m.normalise(pixels)).contiguous()
    save_file(tensors, os.path.join(OUT, "tiny-inputs.safetensors"))

    with open(os.path.join(OUT, "deepconvnet-graph.json"), "w") as f:
        f.write(graph_json_pretty(models.deepconvnet().graph))

    l = tensors["logits_f32"]
    print("logits_f32 range", l.min().item(), l.max().item(), "argmax", l.argmax(1).tolist())
    print("max |f16-f32|", (tensors["logits_f16"] - l).abs().max().item(),
          "max |bf16-f32|", (tensors["logits_bf16"] - l).abs().max().item())
    for fn in sorted(os.listdir(OUT)):
        os.chmod(os.path.join(OUT, fn), 0o644)  # safetensors writes 0600
        print(f"{fn:28s} {os.path.getsize(os.path.join(OUT, fn)):>8,d} bytes")


if __name__ == "__main__":
    main()
