"""The exporter's refusals and its graph, without tinycnn itself.

    target/venv-torch/bin/python -m unittest discover -s python/tests   # (scripts/test-pytorch-export runs it)
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import unittest

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tinycnn_export  # noqa: E402
from tinycnn_export import UnsupportedError  # noqa: E402

X = torch.zeros(1, 1, 28, 28)
NORM = {"mean": 0.1307, "std": 0.3081}


class WithSigmoid(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.gate = nn.Sequential(nn.Conv2d(4, 4, 1), nn.Sigmoid())
        self.fc = nn.Linear(4 * 26 * 26, 10)

    def forward(self, x):
        x = self.conv(x)
        x = x * self.gate(x)
        return self.fc(x.flatten(1))


class TestRefusals(unittest.TestCase):
    def refusal(self, net, x=X, **norm) -> UnsupportedError:
        with self.assertRaises(UnsupportedError) as caught:
            tinycnn_export.to_graph(net, x, **(norm or NORM))
        return caught.exception

    def test_unknown_op_names_op_module_and_line(self):
        e = self.refusal(WithSigmoid())
        self.assertEqual(e.op, "aten.sigmoid.default")
        self.assertEqual(e.module, "gate.1")
        self.assertEqual(e.module_type, "Sigmoid")
        self.assertIn("test_export.py", e.source)
        self.assertIn("self.gate(x)", e.source)
        text = str(e)
        for part in ("aten.sigmoid.default", "gate.1", "Sigmoid", "supported ATen ops:", "conv2d", "cat"):
            self.assertIn(part, text)

    def test_normalisation_is_required(self):
        with self.assertRaises(TypeError) as caught:
            tinycnn_export.to_graph(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), X)
        self.assertIn("mean=", str(caught.exception))

    def test_per_channel_normalisation_is_refused(self):
        class Normalize:  # torchvision.transforms.Normalize's fields
            mean, std = (0.4, 0.5, 0.6), (0.2, 0.2, 0.2)

        with self.assertRaises(ValueError):
            tinycnn_export.to_graph(nn.Conv2d(3, 4, 3), torch.zeros(1, 3, 8, 8), normalize=Normalize())

    def test_unequal_strides(self):
        e = self.refusal(nn.Sequential(nn.Conv2d(1, 2, 3, stride=(1, 2)), nn.Flatten()))
        self.assertIn("stride (1, 2)", str(e))
        self.assertEqual(e.module, "0")

    def test_softmax_inside_the_network(self):
        class Early(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(784, 10)

            def forward(self, x):
                p = F.softmax(x.flatten(1), dim=1)
                return self.fc(p)

        e = self.refusal(Early())
        self.assertIn("softmax only as the network's output", str(e))

    def test_linear_on_an_image(self):
        self.assertIn("flatten first", str(self.refusal(nn.Linear(28, 10))))

    def test_reshape_that_is_not_a_flatten(self):
        class R(nn.Module):
            def forward(self, x):
                return x.view(1, 4, 14, 14)

        self.assertIn("only flattens", str(self.refusal(R())))

    def test_count_include_pad_false(self):
        e = self.refusal(nn.Sequential(nn.AvgPool2d(3, 1, 1, count_include_pad=False), nn.Flatten()))
        self.assertIn("count_include_pad", str(e))


class TestGraph(unittest.TestCase):
    def test_same_padding_with_an_even_kernel_is_asymmetric(self):
        net = nn.Sequential(nn.Conv2d(1, 2, 4, padding="same"), nn.Flatten())
        graph, _ = tinycnn_export.to_graph(net, X, **NORM)
        self.assertEqual(graph["nodes"][0]["pads"], [1, 1, 2, 2])

    def test_file_round_trip(self):
        net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Dropout(), nn.Flatten(),
                            nn.Linear(2 * 26 * 26, 10))
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "m.safetensors")
            tinycnn_export.export(net, X, path, mean=0.0, std=1.0)
            from safetensors import safe_open

            with safe_open(path, "pt") as f:
                graph = json.loads(f.metadata()["tinycnn"])
                keys = set(f.keys())
        self.assertEqual([n["op"] for n in graph["nodes"]], ["conv2d", "batchnorm", "relu", "flatten", "dense"])
        self.assertEqual(keys, {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                                "5.weight", "5.bias"})
        self.assertEqual(graph["input"], {"channels": 1, "height": 28, "width": 28, "mean": 0.0, "std": 1.0})
        self.assertTrue(net.training, "export leaves the module's mode as it was")


if __name__ == "__main__":
    unittest.main()
