"""Export a PyTorch CNN as a tinycnn float model file.

    import tinycnn_export
    tinycnn_export.export(net, torch.zeros(1, 1, 28, 28), "net.safetensors", mean=0.1307, std=0.3081)

then `tinycnn quantize net.safetensors -o net-int8.safetensors`.
"""
from ._export import SUPPORTED, UnsupportedError, export, to_graph

__all__ = ["export", "to_graph", "UnsupportedError", "SUPPORTED"]
