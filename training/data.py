"""MNIST from the IDX files in data/mnist/ (written by scripts/fetch-mnist).

Split: the first 50,000 images of the official 60k training set train the
model; the last 10,000 are a validation set used only for model selection.
The official 10k test set (t10k) is never used for training or selection,
only for the final report.
"""
from __future__ import annotations

import os
import struct

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "mnist")
N_TRAIN = 50_000


def read_idx(path: str) -> np.ndarray:
    """Read an IDX file (ubyte only) into a numpy array of its declared shape."""
    with open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: size mismatch")
    return arr.reshape(dims)


def load(root: str = ROOT):
    """Return dict of uint8 arrays: images [N,1,28,28], labels [N] for train/val/test."""
    tx = read_idx(os.path.join(root, "train-images-idx3-ubyte"))
    ty = read_idx(os.path.join(root, "train-labels-idx1-ubyte"))
    ex = read_idx(os.path.join(root, "t10k-images-idx3-ubyte"))
    ey = read_idx(os.path.join(root, "t10k-labels-idx1-ubyte"))
    assert tx.shape == (60_000, 28, 28) and ex.shape == (10_000, 28, 28)
    tx, ex = tx[:, None], ex[:, None]
    return {
        "train": (tx[:N_TRAIN], ty[:N_TRAIN]),
        "val": (tx[N_TRAIN:], ty[N_TRAIN:]),
        "test": (ex, ey),
    }
