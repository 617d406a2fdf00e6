"""The tinycnn models as PyTorch modules that *are* their graph.

Every model is built with `GraphBuilder`, which records one tinycnn graph node
(docs/FORMAT.md) per step and creates the PyTorch module that owns the node's
parameters under the node's name. `GraphNet.forward` then interprets the graph
node by node, so the network PyTorch trains and the graph JSON written to the
model file cannot disagree, and `state_dict()` names are exactly the tensor
names the format expects (`<node>.<param>`).

`GraphNet.forward` takes the *normalised* input x = (p/255 - mean)/std
(see `GraphNet.normalise`) and returns the logits (the input of the final
softmax node), as the tinycnn engines do.

Architectures: `build("deepconvnet" | "resnet" | "inception")`.
"""
from __future__ import annotations

import copy
import json

import torch
import torch.nn as nn
import torch.nn.functional as F

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


class GraphBuilder:
    """Accumulates graph nodes + their modules, tracking C x H x W shapes."""

    def __init__(self, channels=1, height=28, width=28, mean=MNIST_MEAN, std=MNIST_STD):
        self.input = {"channels": channels, "height": height, "width": width,
                      "mean": mean, "std": std}
        self.nodes: list[dict] = []
        self.modules: dict[str, nn.Module] = {}
        self.shape = {"input": (channels, height, width)}
        self.macs = 0

    def _add(self, node, shape, module=None):
        name = node["name"]
        assert name not in self.shape and name != "input", name
        assert "." not in name, "flat module names only"
        for i in node["inputs"]:
            assert i in self.shape, f"{name}: unknown input {i}"
        self.nodes.append(node)
        self.shape[name] = shape
        if module is not None:
            self.modules[name] = module
        return name

    def conv(self, name, x, out, k, stride=1, padding=0, relu=False, bias=True):
        c, h, w = self.shape[x]
        oh, ow = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
        self.macs += out * oh * ow * c * k * k
        node = {"name": name, "op": "conv2d", "inputs": [x], "stride": stride, "padding": padding}
        if relu:
            node["relu"] = True
        return self._add(node, (out, oh, ow), nn.Conv2d(c, out, k, stride, padding, bias=bias))

    def dense(self, name, x, out, relu=False, bias=True):
        c, h, w = self.shape[x]
        n_in = c * h * w
        assert h * w == 1, "dense needs a C x 1 x 1 input (use flatten)"
        self.macs += n_in * out
        node = {"name": name, "op": "dense", "inputs": [x]}
        if relu:
            node["relu"] = True
        return self._add(node, (out, 1, 1), nn.Linear(n_in, out, bias=bias))

    def _pool(self, op, name, x, kernel, stride=None, padding=0):
        c, h, w = self.shape[x]
        s = kernel if stride is None else stride
        node = {"name": name, "op": op, "inputs": [x], "kernel": kernel}
        if stride is not None and stride != kernel:
            node["stride"] = stride
        if padding:
            node["padding"] = padding
        return self._add(node, (c, (h + 2 * padding - kernel) // s + 1, (w + 2 * padding - kernel) // s + 1))

    def maxpool(self, name, x, kernel, stride=None, padding=0):
        return self._pool("maxpool2d", name, x, kernel, stride, padding)

    def avgpool(self, name, x, kernel, stride=None, padding=0):
        return self._pool("avgpool2d", name, x, kernel, stride, padding)

    def global_avgpool(self, name, x):
        c, _, _ = self.shape[x]
        return self._add({"name": name, "op": "global_avgpool", "inputs": [x]}, (c, 1, 1))

    def batchnorm(self, name, x, eps=1e-5):
        c, h, w = self.shape[x]
        return self._add({"name": name, "op": "batchnorm", "inputs": [x], "eps": eps},
                         (c, h, w), nn.BatchNorm2d(c, eps=eps))

    def relu(self, name, x):
        return self._add({"name": name, "op": "relu", "inputs": [x]}, self.shape[x])

    def dropout(self, name, x, p=0.5):
        return self._add({"name": name, "op": "dropout", "inputs": [x], "p": p},
                         self.shape[x], nn.Dropout(p))

    def flatten(self, name, x):
        c, h, w = self.shape[x]
        return self._add({"name": name, "op": "flatten", "inputs": [x]}, (c * h * w, 1, 1))

    def add(self, name, xs, relu=False):
        shapes = {self.shape[x] for x in xs}
        assert len(shapes) == 1 and 2 <= len(xs) <= 8, shapes
        node = {"name": name, "op": "add", "inputs": list(xs)}
        if relu:
            node["relu"] = True
        return self._add(node, shapes.pop())

    def concat(self, name, xs):
        hw = {self.shape[x][1:] for x in xs}
        assert len(hw) == 1 and 2 <= len(xs) <= 8, hw
        c = sum(self.shape[x][0] for x in xs)
        return self._add({"name": name, "op": "concat", "inputs": list(xs)}, (c,) + hw.pop())

    def softmax(self, name, x):
        return self._add({"name": name, "op": "softmax", "inputs": [x]}, self.shape[x])

    def build(self, arch="custom"):
        graph = {"format": 1, "dtype": "float", "input": dict(self.input),
                 "nodes": copy.deepcopy(self.nodes), "output": self.nodes[-1]["name"]}
        return GraphNet(graph, self.modules, self.macs, arch)


class GraphNet(nn.Module):
    def __init__(self, graph, modules, macs, arch):
        super().__init__()
        self.graph = graph
        self.macs = macs
        self.arch = arch
        for name, m in modules.items():
            self.add_module(name, m)
        self.mean = float(graph["input"].get("mean", 0.0))
        self.std = float(graph["input"].get("std", 1.0))

    def graph_json(self) -> str:
        return json.dumps(self.graph, separators=(",", ":"))

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 / 0..255 pixels -> network input, exactly as FORMAT.md says."""
        return (pixels.to(torch.float32) / 255.0 - self.mean) / self.std

    def forward(self, x):
        vals = {"input": x}
        out = None
        for n in self.graph["nodes"]:
            op, name = n["op"], n["name"]
            a = [vals[i] for i in n["inputs"]]
            if op == "conv2d":
                y = getattr(self, name)(a[0])
                if n.get("relu"):
                    y = F.relu(y)
            elif op == "dense":
                y = getattr(self, name)(a[0].flatten(1))
                if n.get("relu"):
                    y = F.relu(y)
            elif op in ("maxpool2d", "avgpool2d"):
                k = n["kernel"]
                s = n.get("stride", k)
                p = n.get("padding", 0)
                if op == "maxpool2d":
                    y = F.max_pool2d(a[0], k, s, p)
                else:
                    y = F.avg_pool2d(a[0], k, s, p, count_include_pad=True)
            elif op == "global_avgpool":
                y = a[0].mean(dim=(2, 3), keepdim=True)
            elif op in ("batchnorm", "dropout"):
                y = getattr(self, name)(a[0])
            elif op == "relu":
                y = F.relu(a[0])
            elif op == "flatten":
                y = a[0].flatten(1)
            elif op == "add":
                y = a[0]
                for t in a[1:]:
                    y = y + t
                if n.get("relu"):
                    y = F.relu(y)
            elif op == "concat":
                y = torch.cat(a, dim=1)
            elif op == "softmax":
                y = a[0]  # engines return the logits; softmax applied by the loss / caller
            else:
                raise ValueError(f"unknown op {op}")
            vals[name] = y
            if name == self.graph["output"]:
                out = y
        return out.flatten(1)


# ---------------------------------------------------------------- architectures

def deepconvnet() -> GraphNet:
    """'Deep Learning from Scratch' ch.8 DeepConvNet: 123,552 params, 8,772,340 MACs."""
    g = GraphBuilder()
    x = g.conv("conv1", "input", 16, 3, padding=1, relu=True)
    x = g.conv("conv2", x, 16, 3, padding=1, relu=True)
    x = g.maxpool("pool1", x, 2)
    x = g.conv("conv3", x, 32, 3, padding=1, relu=True)
    x = g.conv("conv4", x, 32, 3, padding=2, relu=True)
    x = g.maxpool("pool2", x, 2)
    x = g.conv("conv5", x, 64, 3, padding=1, relu=True)
    x = g.conv("conv6", x, 64, 3, padding=1, relu=True)
    x = g.maxpool("pool3", x, 2)
    x = g.flatten("flatten", x)
    x = g.dense("fc1", x, 50, relu=True)
    x = g.dropout("dropout1", x, 0.5)
    x = g.dense("fc2", x, 10)
    g.softmax("softmax", x)
    net = g.build("deepconvnet")
    for m in net.modules():  # He init as in the book
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return net


def _conv_bn_relu(g, name, x, out, k, stride=1, padding=0, relu=True):
    x = g.conv(name, x, out, k, stride, padding, bias=False)
    x = g.batchnorm(name + "_bn", x)
    return g.relu(name + "_relu", x) if relu else x


def _res_block(g, name, x, out, stride=1):
    cin = g.shape[x][0]
    y = _conv_bn_relu(g, name + "_conv1", x, out, 3, stride, 1)
    y = _conv_bn_relu(g, name + "_conv2", y, out, 3, 1, 1, relu=False)
    if stride != 1 or cin != out:
        x = _conv_bn_relu(g, name + "_down", x, out, 1, stride, 0, relu=False)
    return g.add(name + "_add", [y, x], relu=True)


def resnet() -> GraphNet:
    """Small ResNet: stem 16@28x28, blocks 16@28, 32@14 (stride 2), 64@7 (stride 2),
    global average pool, dense 64->10."""
    g = GraphBuilder()
    x = _conv_bn_relu(g, "stem", "input", 16, 3, 1, 1)
    x = _res_block(g, "res1", x, 16)
    x = _res_block(g, "res2", x, 32, stride=2)
    x = _res_block(g, "res3", x, 64, stride=2)
    x = g.global_avgpool("gap", x)
    x = g.dense("fc", x, 10)
    g.softmax("softmax", x)
    net = g.build("resnet")
    for name, m in net.named_modules():  # zero-init the last BN of each residual branch
        if isinstance(m, nn.BatchNorm2d) and name.endswith("_conv2_bn"):
            nn.init.zeros_(m.weight)
    return net


def _inception(g, name, x, c1, c3r, c3, cp):
    b1 = _conv_bn_relu(g, name + "_b1", x, c1, 1)
    b2 = _conv_bn_relu(g, name + "_b2r", x, c3r, 1)
    b2 = _conv_bn_relu(g, name + "_b2", b2, c3, 3, 1, 1)
    b3 = g.maxpool(name + "_pool", x, 3, stride=1, padding=1)
    b3 = _conv_bn_relu(g, name + "_b3", b3, cp, 1)
    return g.concat(name + "_cat", [b1, b2, b3])


def inception() -> GraphNet:
    """GoogLeNet-style: stem 24@28 + maxpool, inception 64@14, 96@14, maxpool,
    144@7, global average pool, dropout, dense 144->10."""
    g = GraphBuilder()
    x = _conv_bn_relu(g, "stem", "input", 24, 3, 1, 1)
    x = g.maxpool("pool1", x, 2)
    x = _inception(g, "inc1", x, 16, 24, 32, 16)   # -> 64 x 14 x 14
    x = _inception(g, "inc2", x, 32, 32, 48, 16)   # -> 96 x 14 x 14
    x = g.maxpool("pool2", x, 2)
    x = _inception(g, "inc3", x, 48, 48, 64, 32)   # -> 144 x 7 x 7
    x = g.global_avgpool("gap", x)
    x = g.dropout("dropout", x, 0.2)
    x = g.dense("fc", x, 10)
    g.softmax("softmax", x)
    return g.build("inception")


ARCHS = {"deepconvnet": deepconvnet, "resnet": resnet, "inception": inception}


def build(arch: str) -> GraphNet:
    return ARCHS[arch]()


def export_state_dict(net: nn.Module) -> dict:
    """float32 contiguous tensors, without BN's num_batches_tracked counters."""
    return {k: v.detach().to(torch.float32).contiguous().clone()
            for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}


def load_float(arch: str, path: str) -> GraphNet:
    from safetensors.torch import load_file
    net = build(arch)
    sd = load_file(path)
    net.load_state_dict({k: v.float() for k, v in sd.items()}, strict=False)
    missing = set(k for k in net.state_dict() if not k.endswith("num_batches_tracked")) - set(sd)
    assert not missing, missing
    return net.eval()


if __name__ == "__main__":
    for a in ARCHS:
        n = build(a)
        print(f"{a:12s} params {n.n_params():>8,d}  MACs {n.macs:>11,d}  nodes {len(n.graph['nodes'])}")
