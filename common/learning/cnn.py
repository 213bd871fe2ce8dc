"""A small convolutional network in numpy, float64, one flat parameter vector.

conv (``filters`` kernels of ``kernel`` x ``kernel``, stride 1, no padding) -> ReLU ->
non-overlapping ``pool`` x ``pool`` max pooling (the trailing rows/columns that do not fill a
window are dropped) -> optional dense ``hidden`` layer with ReLU -> dense to the classes.

The input row is an image of ``channels`` x side x side, row-major (channel first), as the
MNIST loader (1 x 28 x 28) and the CIFAR-10 loader (3 x 32 x 32) give it. The convolution is
an im2col product (``sliding_window_view`` then one matrix product per chunk of rows), so the
whole batch goes through BLAS; rows are processed in chunks of ``CHUNK_ROWS`` so memory stays
bounded whatever the number of rows.

Parameters, in order: conv weights (C*k*k, F) row-major, conv biases (F), then (if hidden)
W1 (D, h), b1 (h), then W (D or h, n_classes), b (n_classes), with D = F * Hp * Wp the pooled
size (flattened in (Hp, Wp, F) order). Max pooling routes the gradient to the first maximum of
each window (``argmax``), which is the derivative almost everywhere.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from common.learning.errors import LearningSpecError

CHUNK_ROWS = 256


def image_side(n_features: int, channels: int) -> int:
    """The side of a square ``channels`` x side x side image of ``n_features`` values."""
    if n_features % channels:
        raise LearningSpecError(
            "channels", f"{n_features} features are not {channels} channels of a square image"
        )
    side = int(round(np.sqrt(n_features // channels)))
    if side * side * channels != n_features:
        raise LearningSpecError(
            "channels", f"{n_features} features are not {channels} channels of a square image"
        )
    return side


class CNNShapes:
    """Shapes and the parameter layout of a CNN for a given input and spec."""

    def __init__(
        self, n_features: int, n_classes: int, channels: int, filters: int, kernel: int,
        pool: int, hidden: int,
    ) -> None:  # fmt: skip
        self.channels, self.filters, self.kernel, self.pool, self.hidden = (
            channels, filters, kernel, pool, hidden,
        )  # fmt: skip
        self.side = image_side(n_features, channels)
        self.conv_side = self.side - kernel + 1
        if self.conv_side < 1:
            raise LearningSpecError(
                "kernel", f"must be <= the image side {self.side}, got {kernel}"
            )
        self.pool_side = self.conv_side // pool
        if self.pool_side < 1:
            raise LearningSpecError(
                "pool", f"must be <= the convolution output side {self.conv_side}, got {pool}"
            )
        self.flat = filters * self.pool_side * self.pool_side
        ckk = channels * kernel * kernel
        top_in = hidden if hidden else self.flat
        sizes = [("Wc", ckk * filters), ("bc", filters)]
        if hidden:
            sizes += [("W1", self.flat * hidden), ("b1", hidden)]
        sizes += [("W", top_in * n_classes), ("b", n_classes)]
        self.shapes = {
            "Wc": (ckk, filters), "bc": (filters,), "W1": (self.flat, hidden), "b1": (hidden,),
            "W": (top_in, n_classes), "b": (n_classes,),
        }  # fmt: skip
        self.offsets: dict[str, tuple[int, int]] = {}
        at = 0
        for name, size in sizes:
            self.offsets[name] = (at, at + size)
            at += size
        self.n_params = at
        self.fan = {"Wc": (ckk, filters), "W1": (self.flat, hidden), "W": (top_in, n_classes)}

    def split(self, params: np.ndarray) -> dict[str, np.ndarray]:
        return {
            name: params[a:b].reshape(self.shapes[name]) for name, (a, b) in self.offsets.items()
        }


def im2col(images: np.ndarray, kernel: int) -> np.ndarray:
    """(n, C, H, W) -> (n * Ho * Wo, C * k * k): one row per output pixel."""
    n, c = images.shape[:2]
    win = sliding_window_view(images, (kernel, kernel), axis=(2, 3))  # (n, C, Ho, Wo, k, k)
    ho, wo = win.shape[2], win.shape[3]
    return np.ascontiguousarray(win.transpose(0, 2, 3, 1, 4, 5)).reshape(
        n * ho * wo, c * kernel * kernel
    )


def forward(
    s: CNNShapes, p: dict[str, np.ndarray], X: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Logits (n, n_classes) and the intermediates the backward pass needs."""
    n = X.shape[0]
    k, f, q, hp = s.kernel, s.filters, s.pool, s.pool_side
    images = X.reshape(n, s.channels, s.side, s.side)
    cols = im2col(images, k)
    pre = (cols @ p["Wc"] + p["bc"]).reshape(n, s.conv_side, s.conv_side, f)
    act = np.maximum(pre, 0.0)
    crop = act[:, : hp * q, : hp * q, :]
    windows = (
        crop.reshape(n, hp, q, hp, q, f).transpose(0, 1, 3, 5, 2, 4).reshape(n, hp, hp, f, q * q)
    )
    arg = windows.argmax(axis=4)
    pooled = np.take_along_axis(windows, arg[..., None], axis=4)[..., 0]  # (n, hp, hp, f)
    flat = pooled.reshape(n, s.flat)
    cache = {"cols": cols, "pre": pre, "arg": arg, "flat": flat}
    top = flat
    if s.hidden:
        hpre = flat @ p["W1"] + p["b1"]
        top = np.maximum(hpre, 0.0)
        cache["hpre"], cache["hact"] = hpre, top
    return top @ p["W"] + p["b"], cache


def backward(
    s: CNNShapes, p: dict[str, np.ndarray], cache: dict[str, np.ndarray], delta: np.ndarray
) -> dict[str, np.ndarray]:
    """Gradients of the summed loss given ``delta`` = dLoss/dlogits (n, n_classes)."""
    n = delta.shape[0]
    f, q, hp, co = s.filters, s.pool, s.pool_side, s.conv_side
    g: dict[str, np.ndarray] = {}
    top = cache["hact"] if s.hidden else cache["flat"]
    g["W"] = top.T @ delta
    g["b"] = delta.sum(axis=0)
    d_top = delta @ p["W"].T
    if s.hidden:
        d_hpre = d_top * (cache["hpre"] > 0.0)
        g["W1"] = cache["flat"].T @ d_hpre
        g["b1"] = d_hpre.sum(axis=0)
        d_flat = d_hpre @ p["W1"].T
    else:
        d_flat = d_top
    d_windows = np.zeros((n, hp, hp, f, q * q))
    np.put_along_axis(d_windows, cache["arg"][..., None], d_flat.reshape(n, hp, hp, f, 1), axis=4)
    d_act = np.zeros((n, co, co, f))
    d_act[:, : hp * q, : hp * q, :] = (
        d_windows.reshape(n, hp, hp, f, q, q)
        .transpose(0, 1, 4, 2, 5, 3)
        .reshape(n, hp * q, hp * q, f)
    )
    d_pre = (d_act * (cache["pre"] > 0.0)).reshape(n * co * co, f)
    g["Wc"] = cache["cols"].T @ d_pre
    g["bc"] = d_pre.sum(axis=0)
    return g
