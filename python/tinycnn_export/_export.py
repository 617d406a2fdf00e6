"""A `torch.export` program → a tinycnn float model file (docs/FORMAT.md).

The module is captured with `torch.export.export` (PyTorch's training IR:
ATen ops such as `aten.conv2d.default`, with the module's parameters and
buffers lifted to inputs). Each ATen call becomes at most one tinycnn node;
values that tinycnn does not distinguish (dropout at inference, `clone`, a
reshape of a flat vector) are aliases. Anything else raises
`UnsupportedError` naming the ATen op, the module path and the source line.

Node names: an op that owns parameters is named after its weight's module
(`features.0.weight` → node `features.0`), so the file's tensor names are the
`state_dict` names; other nodes take their module's path where that module
is a single op (an `nn.ReLU` at `features.1` → `features.1`), else the FX
node's name under its module's path.
"""
from __future__ import annotations

import json
import math
import operator
import os
import re
from dataclasses import dataclass

import torch

FORMAT_VERSION = 1
METADATA_KEY = "tinycnn"

# What the error message lists: ATen op (as `str(OpOverload)`) → what it becomes.
SUPPORTED = {
    "aten.conv2d.default": "conv2d (stride, padding, dilation, groups)",
    "aten.conv2d.padding": "conv2d with padding='same' / 'valid'",
    "aten.convolution.default": "conv2d (not transposed)",
    "aten.linear.default": "dense, on a flat input",
    "aten.batch_norm.default": "batchnorm (eval mode)",
    "aten._native_batch_norm_legit_no_training.default": "batchnorm (eval mode)",
    "aten.relu.default": "relu",
    "aten.relu_.default": "relu",
    "aten.relu6.default": "clamp 0..6",
    "aten.hardtanh.default": "clamp (ReLU6, Hardtanh)",
    "aten.hardtanh_.default": "clamp (ReLU6, Hardtanh)",
    "aten.clamp.default": "clamp with both bounds, or relu (min=0)",
    "aten.max_pool2d.default": "maxpool2d (square, no dilation)",
    "aten.max_pool2d_with_indices.default": "maxpool2d (the indices unused)",
    "aten.avg_pool2d.default": "avgpool2d (count_include_pad, or no padding)",
    "aten.adaptive_avg_pool2d.default": "global_avgpool (output 1), or avgpool2d when the output divides the input",
    "aten._adaptive_avg_pool2d.default": "as adaptive_avg_pool2d",
    "aten.mean.dim": "global_avgpool (mean over H and W)",
    "aten.flatten.using_ints": "flatten (start_dim=1)",
    "aten.view.default": "flatten (to [N, C*H*W])",
    "aten.reshape.default": "flatten (to [N, C*H*W])",
    "aten._unsafe_view.default": "flatten (to [N, C*H*W])",
    "aten.dropout.default": "nothing (identity at inference)",
    "aten.feature_dropout.default": "nothing (identity at inference)",
    "aten.add.Tensor": "add of two branches (alpha=1)",
    "aten.add_.Tensor": "add of two branches (alpha=1)",
    "aten.cat.default": "concat on the channel axis",
    "aten.softmax.int": "softmax over the classes, as the graph output",
    "aten._softmax.default": "softmax over the classes, as the graph output",
    "aten.clone.default": "nothing (identity)",
    "aten.contiguous.default": "nothing (identity)",
    "aten.alias.default": "nothing (identity)",
    "aten.detach.default": "nothing (identity)",
}

_TORCH_DIR = os.path.dirname(torch.__file__)
_FRAME = re.compile(r'File "([^"]+)", line (\d+), in [^\n]*\n[ \t]*([^\n]*)')


class UnsupportedError(Exception):
    """The module uses something tinycnn cannot run exactly.

    `op` is the ATen op (e.g. ``aten.sigmoid.default``), `module` the path of
    the innermost module that called it (``""`` at the top level) and
    `source` the user's source line (``file:line: code``), where PyTorch
    recorded them."""

    def __init__(self, reason: str, op: str = "", module: str = "", module_type: str = "", source: str = ""):
        self.reason, self.op, self.module, self.module_type, self.source = reason, op, module, module_type, source
        where = f"module '{module}'" if module else "the top-level module"
        if module_type:
            where += f" ({module_type})"
        lines = [f"tinycnn cannot export {op or 'this module'}: {reason}", f"  in {where}"]
        if source:
            lines.append(f"  at {source}")
        lines.append("  supported ATen ops: " + ", ".join(sorted({k.split(".")[1] for k in SUPPORTED})))
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Act:
    """A tinycnn value: the node that computes it and its C×H×W shape
    (a flat [N, F] tensor is F×1×1); `rank` is PyTorch's rank (2 or 4)."""

    name: str
    shape: tuple
    rank: int


@dataclass(frozen=True)
class Param:
    """A lifted parameter, buffer or constant: its `state_dict` name and value."""

    fqn: str
    tensor: torch.Tensor


class _Dead:
    """A value no tinycnn node may read (e.g. max-pool indices)."""

    def __init__(self, what: str):
        self.what = what


def _normalisation(mean, std, normalize, channels: int) -> tuple[float, float]:
    if normalize is not None:
        if mean is not None or std is not None:
            raise TypeError("give either normalize= or mean= and std=, not both")
        mean, std = getattr(normalize, "mean", None), getattr(normalize, "std", None)
        if mean is None or std is None:
            raise TypeError("normalize= takes a torchvision.transforms.Normalize (an object with .mean and .std)")
    if mean is None or std is None:
        raise TypeError(
            "export needs the input normalisation the network was trained with: pixels p in 0..255 reach it as "
            "x = (p/255 - mean)/std. Pass mean= and std= (mean=0, std=1 for x = p/255; std=256/255 for x = p/256) "
            "or normalize=transforms.Normalize(...)"
        )

    def one(v, what):
        vals = [float(x) for x in (v.tolist() if isinstance(v, torch.Tensor) else v)] if not isinstance(
            v, (int, float)) else [float(v)]
        if len(vals) not in (1, channels) or len(set(vals)) != 1:
            raise ValueError(f"{what} {vals}: tinycnn normalises every channel alike (one {what} for all {channels})")
        if not math.isfinite(vals[0]):
            raise ValueError(f"{what} {vals[0]} is not finite")
        return vals[0]

    mean, std = one(mean, "mean"), one(std, "std")
    if std <= 0:
        raise ValueError(f"std {std} must be > 0")
    return mean, std


def _pair(v, what: str) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    v = list(v)
    if len(v) == 1:
        return int(v[0]), int(v[0])
    if len(v) == 2:
        return int(v[0]), int(v[1])
    raise ValueError(f"{what} {v}: expected one or two values")


class _Converter:
    def __init__(self, ep: torch.export.ExportedProgram):
        self.ep = ep
        self.nodes: list[dict] = []
        self.tensors: dict[str, torch.Tensor] = {}
        self.names: set[str] = {"input"}
        self.env: dict = {}
        self.softmax_nodes: dict[str, torch.fx.Node] = {}
        self.node = None  # the FX node being converted, for error messages

    # -- errors and names --------------------------------------------------

    def _module(self, n) -> tuple[str, str]:
        stack = n.meta.get("nn_module_stack") or {}
        if not stack:
            return "", ""
        path, typ = list(stack.values())[-1]
        return str(path), str(typ).rsplit(".", 1)[-1]

    def _source(self, n) -> str:
        frames = _FRAME.findall(n.meta.get("stack_trace") or "")
        user = [f for f in frames if not os.path.abspath(f[0]).startswith(_TORCH_DIR)]
        if not user:
            return ""
        file, line, code = user[-1]
        return f"{file}:{line}: {code.strip()}"

    def fail(self, reason: str, n=None) -> UnsupportedError:
        n = n if n is not None else self.node
        if n is None:
            return UnsupportedError(reason)
        module, typ = self._module(n)
        op = str(n.target) if n.op == "call_function" else n.op
        return UnsupportedError(reason, op, module, typ, self._source(n))

    def _unique(self, name: str) -> str:
        base, k = name, 1
        while name in self.names:
            k += 1
            name = f"{base}_{k}"
        self.names.add(name)
        return name

    def _name_for(self, n, owner: Param | None) -> str:
        if owner is not None:
            fqn = owner.fqn
            for suffix in (".weight", ".running_mean"):
                if fqn.endswith(suffix):
                    fqn = fqn[: -len(suffix)]
                    break
            return self._unique(fqn)
        path = self._module(n)[0]
        stack = n.meta.get("nn_module_stack") or {}
        builtin = bool(stack) and str(list(stack.values())[-1][1]).startswith("torch.nn.")
        ops_in_module = sum(1 for m in n.graph.nodes if m.op == "call_function" and self._module(m)[0] == path)
        # A torch.nn module (ReLU, MaxPool2d, …) is one op, maybe called more than once: its path, numbered.
        if path and (builtin or (ops_in_module == 1 and path not in self.names)):
            return self._unique(path)
        return self._unique(f"{path}.{n.name}" if path else n.name)

    # -- values ------------------------------------------------------------

    def value(self, a):
        if isinstance(a, torch.fx.Node):
            v = self.env[a]
            if isinstance(v, _Dead):
                raise self.fail(f"it reads {v.what}, which tinycnn does not compute")
            return v
        if isinstance(a, (list, tuple)):
            return type(a)(self.value(x) for x in a)
        return a

    def arg(self, i: int, name: str, default=None):
        n = self.node
        a = n.args[i] if len(n.args) > i else n.kwargs.get(name, default)
        return self.value(a)

    def act(self, i: int, name: str = "input") -> Act:
        v = self.arg(i, name)
        if not isinstance(v, Act):
            raise self.fail(f"its {name} is a constant or parameter ({getattr(v, 'fqn', v)}); tinycnn needs an activation")
        return v

    def param(self, i: int, name: str, optional: bool = False) -> Param | None:
        v = self.arg(i, name)
        if v is None and optional:
            return None
        if not isinstance(v, Param):
            raise self.fail(f"its {name} is computed in the graph; tinycnn needs a parameter or buffer")
        return v

    def out_shape(self) -> tuple[tuple, int]:
        val = self.node.meta.get("val")
        if not isinstance(val, torch.Tensor):
            raise self.fail("PyTorch recorded no output tensor for it")
        s = tuple(int(d) for d in val.shape)
        if len(s) == 4:
            return (s[1], s[2], s[3]), 4
        if len(s) == 2:
            return (s[1], 1, 1), 2
        raise self.fail(f"its output has shape {list(s)}; tinycnn's values are [N, C, H, W] or [N, F]")

    def emit(self, op: str, inputs: list[Act], attrs: dict | None = None, owner: Param | None = None,
             tensors: dict | None = None) -> Act:
        name = self._name_for(self.node, owner)
        node = {"name": name, "op": op, "inputs": [a.name for a in inputs]}
        node.update(attrs or {})
        self.nodes.append(node)
        for key, t in (tensors or {}).items():
            self.tensors[f"{name}.{key}"] = t.detach().to(torch.float32).contiguous().clone()
        shape, rank = self.out_shape()
        return Act(name, shape, rank)

    # -- the walk ----------------------------------------------------------

    def run(self, example_batch: int) -> tuple[dict, str]:
        sig = self.ep.graph_signature
        kinds = {s.arg.name: s for s in sig.input_specs}
        state, constants = self.ep.state_dict, self.ep.constants
        user_inputs = 0
        for n in self.ep.graph.nodes:
            self.node = n
            if n.op == "placeholder":
                spec = kinds[n.name]
                kind = spec.kind.name
                if kind == "USER_INPUT":
                    user_inputs += 1
                    shape, rank = self.out_shape()
                    if rank != 4:
                        raise self.fail("the input must be an image batch [N, C, H, W]")
                    self.env[n] = Act("input", shape, 4)
                elif kind in ("PARAMETER", "BUFFER", "CONSTANT_TENSOR"):
                    t = state[spec.target] if spec.target in state else constants[spec.target]
                    self.env[n] = Param(spec.target, t)
                else:
                    raise self.fail(f"an input of kind {kind} ({spec.target})")
            elif n.op == "call_function":
                self.env[n] = self.call(n)
            elif n.op == "output":
                outs = n.args[0]
                if len(outs) != 1:
                    raise self.fail(f"the module returns {len(outs)} values; tinycnn models have one output")
                out = self.value(outs[0])
                if not isinstance(out, Act) or out.name == "input":
                    raise self.fail("the module's output is not computed from its input by tinycnn nodes")
                output = out.name
            else:
                raise self.fail(f"an FX node of kind {n.op}")
        if user_inputs != 1:
            raise UnsupportedError(f"the module takes {user_inputs} tensor inputs; tinycnn models take one image")
        for name, fx in self.softmax_nodes.items():
            if name != output:
                raise self.fail("softmax only as the network's output (tinycnn returns its logits)", fx)
        return self._pruned(output), output

    def _pruned(self, output: str) -> list[dict]:
        by_name = {nd["name"]: nd for nd in self.nodes}
        live, todo = set(), [output]
        while todo:
            name = todo.pop()
            if name in live or name == "input":
                continue
            live.add(name)
            todo.extend(by_name[name]["inputs"])
        for key in list(self.tensors):
            if key.rsplit(".", 1)[0] not in live:
                del self.tensors[key]
        return [nd for nd in self.nodes if nd["name"] in live]

    def call(self, n):
        if n.target is operator.getitem:
            return self.value(n.args[0])[n.args[1]]
        op = str(n.target)
        handler = _HANDLERS.get(op)
        if handler is None:
            raise self.fail("tinycnn has no such op")
        return handler(self)

    # -- ops ---------------------------------------------------------------

    def conv(self):
        op = str(self.node.target)
        x, w, b = self.act(0), self.param(1, "weight"), self.param(2, "bias", optional=True)
        if op == "aten.convolution.default":
            stride, padding, dilation = self.arg(3, "stride"), self.arg(4, "padding"), self.arg(5, "dilation")
            if self.arg(6, "transposed"):
                raise self.fail("a transposed convolution")
            groups = self.arg(8, "groups")
        else:
            stride = self.arg(3, "stride", [1, 1])
            padding = self.arg(4, "padding", "valid" if op.endswith(".padding") else [0, 0])
            dilation, groups = self.arg(5, "dilation", [1, 1]), self.arg(6, "groups", 1)
        if w.tensor.dim() != 4:
            raise self.fail(f"a {w.tensor.dim() - 2}-d convolution; tinycnn runs conv2d")
        kh, kw = int(w.tensor.shape[2]), int(w.tensor.shape[3])
        (sh, sw), (dh, dw) = _pair(stride, "stride"), _pair(dilation, "dilation")
        if sh != sw:
            raise self.fail(f"stride ({sh}, {sw}); tinycnn needs equal strides")
        if dh != dw:
            raise self.fail(f"dilation ({dh}, {dw}); tinycnn needs equal dilations")
        if isinstance(padding, str):
            if padding == "valid":
                pads = [0, 0, 0, 0]
            else:  # 'same' (stride 1): ATen puts the odd row/column below/right
                th, tw = dh * (kh - 1), dw * (kw - 1)
                pads = [th // 2, tw // 2, th - th // 2, tw - tw // 2]
        else:
            ph, pw = _pair(padding, "padding")
            pads = [ph, pw, ph, pw]
        attrs = {"stride": sh}
        if len(set(pads)) == 1:
            attrs["padding"] = pads[0]
        else:
            attrs["pads"] = pads
        if groups != 1:
            attrs["groups"] = int(groups)
        if dh != 1:
            attrs["dilation"] = dh
        tensors = {"weight": w.tensor}
        if b is not None:
            tensors["bias"] = b.tensor
        return self.emit("conv2d", [x], attrs, w, tensors)

    def linear(self):
        x, w, b = self.act(0), self.param(1, "weight"), self.param(2, "bias", optional=True)
        if x.rank != 2:
            raise self.fail(
                "linear on a 4-d tensor acts on its last axis; tinycnn's dense takes a flat input (flatten first)")
        tensors = {"weight": w.tensor}
        if b is not None:
            tensors["bias"] = b.tensor
        return self.emit("dense", [x], {}, w, tensors)

    def batchnorm(self):
        op = str(self.node.target)
        x = self.act(0)
        w, b = self.param(1, "weight", optional=True), self.param(2, "bias", optional=True)
        mean, var = self.param(3, "running_mean", optional=True), self.param(4, "running_var", optional=True)
        if op == "aten.batch_norm.default":
            training, eps = self.arg(5, "training"), self.arg(7, "eps")
        else:
            training, eps = False, self.arg(6, "eps")
        if training or mean is None or var is None:
            raise self.fail("batch norm with batch statistics (training mode, or track_running_stats=False)")
        c = int(mean.tensor.numel())
        tensors = {
            "weight": w.tensor if w is not None else torch.ones(c),
            "bias": b.tensor if b is not None else torch.zeros(c),
            "running_mean": mean.tensor,
            "running_var": var.tensor,
        }
        y = self.emit("batchnorm", [x], {"eps": float(eps)}, mean, tensors)
        # _native_batch_norm_legit_no_training returns (out, save_mean, save_invstd)
        return y if op == "aten.batch_norm.default" else (y, _Dead("batch norm statistics"), _Dead("batch norm statistics"))

    def relu(self):
        return self.emit("relu", [self.act(0)])

    def clamp(self, lo, hi):
        x = self.act(0)
        if lo is None and hi is None:
            return x
        if hi is None and lo == 0:
            return self.emit("relu", [x])
        if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
            raise self.fail(f"clamp to [{lo}, {hi}]; tinycnn clamps to a finite [min, max] (or min=0: relu)")
        return self.emit("clamp", [x], {"min": float(lo), "max": float(hi)})

    def hardtanh(self):
        return self.clamp(float(self.arg(1, "min_val", -1.0)), float(self.arg(2, "max_val", 1.0)))

    def aten_clamp(self):
        lo, hi = self.arg(1, "min"), self.arg(2, "max")
        if isinstance(lo, Param) or isinstance(hi, Param):
            raise self.fail("clamp with tensor bounds")
        return self.clamp(None if lo is None else float(lo), None if hi is None else float(hi))

    def relu6(self):
        return self.clamp(0.0, 6.0)

    def _window(self, kernel, stride, padding, ceil_mode, dilation=1):
        x = self.act(0)
        (kh, kw), (ph, pw) = _pair(kernel, "kernel_size"), _pair(padding, "padding")
        sh, sw = _pair(stride, "stride") if stride not in (None, []) else (kh, kw)
        if (kh, sh, ph) != (kw, sw, pw):
            raise self.fail(f"window {kh}x{kw}, stride ({sh}, {sw}), padding ({ph}, {pw}); tinycnn's pools are square")
        if _pair(dilation, "dilation") != (1, 1):
            raise self.fail("a dilated pool")
        if ceil_mode:
            _, h, w = x.shape
            floor = ((h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)
            if floor != self.out_shape()[0][1:]:
                raise self.fail("ceil_mode=True where it adds a partial window; tinycnn rounds down")
        attrs = {"kernel": kh}
        if sh != kh:
            attrs["stride"] = sh
        if ph:
            attrs["padding"] = ph
        return x, attrs

    def maxpool(self):
        x, attrs = self._window(self.arg(1, "kernel_size"), self.arg(2, "stride", []), self.arg(3, "padding", 0),
                                self.arg(5, "ceil_mode", False), self.arg(4, "dilation", 1))
        y = self.emit("maxpool2d", [x], attrs)
        if str(self.node.target) == "aten.max_pool2d_with_indices.default":
            return (y, _Dead("max-pool indices"))
        return y

    def avgpool(self):
        x, attrs = self._window(self.arg(1, "kernel_size"), self.arg(2, "stride", []), self.arg(3, "padding", 0),
                                self.arg(4, "ceil_mode", False))
        if attrs.get("padding") and not self.arg(5, "count_include_pad", True):
            raise self.fail("count_include_pad=False with padding; tinycnn counts padded taps (as PyTorch's default)")
        if self.arg(6, "divisor_override") is not None:
            raise self.fail("divisor_override")
        return self.emit("avgpool2d", [x], attrs)

    def adaptive_avgpool(self):
        x = self.act(0)
        oh, ow = _pair(self.arg(1, "output_size"), "output_size")
        _, h, w = x.shape
        if (oh, ow) == (1, 1):
            return self.emit("global_avgpool", [x])
        if h % oh == 0 and w % ow == 0 and h // oh == w // ow:
            return self.emit("avgpool2d", [x], {"kernel": h // oh})
        raise self.fail(f"adaptive average pool {h}x{w} → {oh}x{ow}: not one square window per output")

    def mean(self):
        x = self.act(0)
        dims = self.arg(1, "dim")
        dims = {int(d) % 4 for d in (dims if isinstance(dims, (list, tuple)) else [dims])}
        if x.rank != 4 or dims != {2, 3}:
            raise self.fail(f"mean over axes {sorted(dims)}; tinycnn averages over H and W of an image")
        if self.arg(3, "dtype") is not None:
            raise self.fail("mean with a dtype")
        return self.emit("global_avgpool", [x])

    def flatten(self):
        x = self.act(0)
        start, end = int(self.arg(1, "start_dim", 0)), int(self.arg(2, "end_dim", -1))
        if start != 1 or end % x.rank != x.rank - 1:
            raise self.fail(f"flatten(start_dim={start}, end_dim={end}); tinycnn flattens all but the batch axis")
        return x if x.rank == 2 else self.emit("flatten", [x])

    def reshape(self):
        x = self.act(0)
        shape, rank = self.out_shape()
        size = [int(d) for d in self.node.meta["val"].shape]
        same_numel = shape[0] * shape[1] * shape[2] == x.shape[0] * x.shape[1] * x.shape[2]
        if rank == 2 and same_numel:
            return x if x.rank == 2 else self.emit("flatten", [x])
        if rank == 4 and shape[1:] == (1, 1) and x.shape[1:] == (1, 1) and same_numel:
            return Act(x.name, x.shape, 4)  # [N, C] ↔ [N, C, 1, 1]: the same tinycnn value
        raise self.fail(f"reshape of {x.shape} to {size}; tinycnn only flattens (to [N, C*H*W])")

    def dropout(self):
        if self.arg(2, "train"):
            raise self.fail("dropout in training mode")
        return self.act(0)

    def identity(self):
        return self.act(0)

    def add(self):
        a, b = self.act(0, "self"), self.arg(1, "other")
        if not isinstance(b, Act):
            raise self.fail("add of a constant; tinycnn adds two branches")
        if self.arg(2, "alpha", 1) != 1:
            raise self.fail("add with alpha != 1")
        if a.shape != b.shape:
            raise self.fail(f"add of shapes {a.shape} and {b.shape} (broadcasting); tinycnn adds equal shapes")
        return self.emit("add", [a, b])

    def cat(self):
        xs = self.arg(0, "tensors")
        if not all(isinstance(v, Act) for v in xs):
            raise self.fail("concatenation with a constant")
        rank = xs[0].rank
        dim = int(self.arg(1, "dim", 0)) % rank
        if dim != 1 or any(v.rank != rank for v in xs):
            raise self.fail(f"cat on axis {dim} of rank-{rank} tensors; tinycnn concatenates channels (dim=1)")
        if len(xs) == 1:
            return xs[0]
        if len(xs) > 8:
            raise self.fail(f"cat of {len(xs)} tensors; tinycnn's concat takes 2 to 8")
        return self.emit("concat", list(xs))

    def softmax(self):
        x = self.act(0)
        dim = int(self.arg(1, "dim")) % x.rank
        if x.shape[1:] != (1, 1) or dim != 1:
            raise self.fail("softmax over anything but the classes of a flat vector")
        if str(self.node.target) == "aten._softmax.default" and self.arg(2, "half_to_float"):
            raise self.fail("softmax with half_to_float")
        y = self.emit("softmax", [x])
        self.softmax_nodes[y.name] = self.node
        return y


_HANDLERS = {
    "aten.conv2d.default": _Converter.conv,
    "aten.conv2d.padding": _Converter.conv,
    "aten.convolution.default": _Converter.conv,
    "aten.linear.default": _Converter.linear,
    "aten.batch_norm.default": _Converter.batchnorm,
    "aten._native_batch_norm_legit_no_training.default": _Converter.batchnorm,
    "aten.relu.default": _Converter.relu,
    "aten.relu_.default": _Converter.relu,
    "aten.relu6.default": _Converter.relu6,
    "aten.hardtanh.default": _Converter.hardtanh,
    "aten.hardtanh_.default": _Converter.hardtanh,
    "aten.clamp.default": _Converter.aten_clamp,
    "aten.max_pool2d.default": _Converter.maxpool,
    "aten.max_pool2d_with_indices.default": _Converter.maxpool,
    "aten.avg_pool2d.default": _Converter.avgpool,
    "aten.adaptive_avg_pool2d.default": _Converter.adaptive_avgpool,
    "aten._adaptive_avg_pool2d.default": _Converter.adaptive_avgpool,
    "aten.mean.dim": _Converter.mean,
    "aten.flatten.using_ints": _Converter.flatten,
    "aten.view.default": _Converter.reshape,
    "aten.reshape.default": _Converter.reshape,
    "aten._unsafe_view.default": _Converter.reshape,
    "aten.dropout.default": _Converter.dropout,
    "aten.feature_dropout.default": _Converter.dropout,
    "aten.add.Tensor": _Converter.add,
    "aten.add_.Tensor": _Converter.add,
    "aten.cat.default": _Converter.cat,
    "aten.softmax.int": _Converter.softmax,
    "aten._softmax.default": _Converter.softmax,
    "aten.clone.default": _Converter.identity,
    "aten.contiguous.default": _Converter.identity,
    "aten.alias.default": _Converter.identity,
    "aten.detach.default": _Converter.identity,
}
assert set(_HANDLERS) == set(SUPPORTED), "every supported op has a handler and a line in the error message"


def to_graph(module: torch.nn.Module, example_input: torch.Tensor, *, mean=None, std=None, normalize=None):
    """Captures `module` with `torch.export` and returns (graph, tensors):
    the tinycnn graph as a dict and its float32 tensors by file name."""
    if not isinstance(example_input, torch.Tensor) or example_input.dim() != 4:
        raise ValueError("example_input must be an image batch tensor [N, C, H, W]")
    n, c, h, w = (int(d) for d in example_input.shape)
    mean, std = _normalisation(mean, std, normalize, c)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            ep = torch.export.export(module, (example_input.to(torch.float32),))
    finally:
        module.train(was_training)
    conv = _Converter(ep)
    nodes, output = conv.run(n)
    graph = {
        "format": FORMAT_VERSION,
        "dtype": "float",
        "input": {"channels": c, "height": h, "width": w, "mean": mean, "std": std},
        "nodes": nodes,
        "output": output,
    }
    return graph, conv.tensors


def export(module: torch.nn.Module, example_input: torch.Tensor, path, *, mean=None, std=None, normalize=None) -> dict:
    """Writes `module` as a tinycnn float model file at `path` and returns its graph.

    `mean`/`std` (or `normalize`, a `torchvision.transforms.Normalize`) are
    the normalisation the network was trained with: a pixel p in 0..255
    reaches it as (p/255 − mean)/std. They are required: a wrong guess costs
    accuracy silently. `tinycnn quantize` turns the file into int8."""
    from safetensors.torch import save_file

    graph, tensors = to_graph(module, example_input, mean=mean, std=std, normalize=normalize)
    save_file(tensors, str(path), metadata={METADATA_KEY: json.dumps(graph, separators=(",", ":")), "format": "pt"})
    return graph
