"""Models whose parameters are one flat float64 vector.

``gradient_sum(params, X, y)`` is the gradient of the loss SUMMED over the rows given, so the
gradients of disjoint partitions add up to the full-batch gradient and coded training is exactly
gradient descent. ``loss`` is the MEAN over the rows. The per-row loss is cross-entropy plus
``l2/2 * ||weights||^2`` (biases are not penalised), so the L2 term is also additive over rows:
the summed gradient carries ``n_rows * l2 * weights``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from common.learning import cnn
from common.learning.errors import LearningSpecError
from common.learning.spec import validate_model_spec


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)  # avoid overflow in exp
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def _cross_entropy_rows(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1))
    return log_norm - shifted[np.arange(len(y)), y]


class Model(ABC):
    """A classifier over ``n_features`` inputs and ``n_classes`` labels 0..n_classes-1."""

    def __init__(self, n_features: int, n_classes: int, l2: float) -> None:
        if n_features < 1:
            raise ValueError(f"n_features: must be >= 1, got {n_features}")
        if n_classes < 2:
            raise ValueError(f"n_classes: must be >= 2, got {n_classes}")
        self.n_features = n_features
        self.n_classes = n_classes
        self.l2 = l2

    @property
    @abstractmethod
    def n_params(self) -> int:
        """Length P of the flat parameter vector."""

    @abstractmethod
    def init_params(self, seed: int) -> np.ndarray:
        """Initial parameters, shape (P,), deterministic in ``seed``."""

    @abstractmethod
    def logits(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Class scores, shape (n_rows, n_classes)."""

    @abstractmethod
    def gradient_sum(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Gradient of the summed loss over the rows of X, shape (P,)."""

    @abstractmethod
    def _weight_norm2(self, params: np.ndarray) -> float:
        """Squared norm of the penalised (non-bias) parameters."""

    def _check(self, params: np.ndarray, X: np.ndarray, y: np.ndarray | None = None) -> None:
        if params.shape != (self.n_params,):
            raise ValueError(f"params: expected shape ({self.n_params},), got {params.shape}")
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X: expected shape (n_rows, {self.n_features}), got {X.shape}")
        if y is not None and y.shape != (X.shape[0],):
            raise ValueError(f"y: expected shape ({X.shape[0]},), got {y.shape}")

    def loss(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
        """Mean per-row loss (cross-entropy + l2/2 ||weights||^2) over the rows of X."""
        self._check(params, X, y)
        if len(y) == 0:
            raise ValueError("X: loss of zero rows is undefined")
        ce = float(_cross_entropy_rows(self.logits(params, X), y).mean())
        return ce + 0.5 * self.l2 * self._weight_norm2(params)

    def accuracy(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
        """Fraction of rows whose highest-scoring class is the label."""
        self._check(params, X, y)
        if len(y) == 0:
            raise ValueError("X: accuracy of zero rows is undefined")
        return float((self.logits(params, X).argmax(axis=1) == y).mean())


class LogisticRegression(Model):
    """Multinomial logistic regression; params = [W (d*C, row-major), b (C)]."""

    @property
    def n_params(self) -> int:
        return (self.n_features + 1) * self.n_classes

    def _split(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d, c = self.n_features, self.n_classes
        return params[: d * c].reshape(d, c), params[d * c :]

    def init_params(self, seed: int) -> np.ndarray:
        # Zero is the natural start for a convex model; seed kept for a uniform interface.
        del seed
        return np.zeros(self.n_params, dtype=np.float64)

    def logits(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        W, b = self._split(params)
        return X @ W + b

    def _weight_norm2(self, params: np.ndarray) -> float:
        W, _ = self._split(params)
        return float(np.sum(W * W))

    def gradient_sum(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        self._check(params, X, y)
        W, _ = self._split(params)
        delta = _softmax(self.logits(params, X))
        delta[np.arange(len(y)), y] -= 1.0
        grad_W = X.T @ delta + len(y) * self.l2 * W
        return np.concatenate([grad_W.ravel(), delta.sum(axis=0)])


class MLP(Model):
    """One hidden layer; params = [W1 (d*h), b1 (h), W2 (h*C), b2 (C)]."""

    def __init__(
        self, n_features: int, n_classes: int, l2: float, hidden: int, activation: str
    ) -> None:
        super().__init__(n_features, n_classes, l2)
        self.hidden = hidden
        self.activation = activation

    @property
    def n_params(self) -> int:
        d, h, c = self.n_features, self.hidden, self.n_classes
        return d * h + h + h * c + c

    def _split(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        d, h, c = self.n_features, self.hidden, self.n_classes
        o1, o2, o3 = d * h, d * h + h, d * h + h + h * c
        return (
            params[:o1].reshape(d, h),
            params[o1:o2],
            params[o2:o3].reshape(h, c),
            params[o3:],
        )

    def init_params(self, seed: int) -> np.ndarray:
        """Glorot-uniform weights, zero biases."""
        rng = np.random.default_rng(seed)
        d, h, c = self.n_features, self.hidden, self.n_classes
        lim1, lim2 = np.sqrt(6.0 / (d + h)), np.sqrt(6.0 / (h + c))
        return np.concatenate(
            [
                rng.uniform(-lim1, lim1, d * h),
                np.zeros(h),
                rng.uniform(-lim2, lim2, h * c),
                np.zeros(c),
            ]
        )

    def _hidden(self, params: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        W1, b1, _, _ = self._split(params)
        pre = X @ W1 + b1
        act = np.tanh(pre) if self.activation == "tanh" else np.maximum(pre, 0.0)
        return pre, act

    def logits(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        _, _, W2, b2 = self._split(params)
        return self._hidden(params, X)[1] @ W2 + b2

    def _weight_norm2(self, params: np.ndarray) -> float:
        W1, _, W2, _ = self._split(params)
        return float(np.sum(W1 * W1) + np.sum(W2 * W2))

    def gradient_sum(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        self._check(params, X, y)
        W1, _, W2, b2 = self._split(params)
        pre, act = self._hidden(params, X)
        delta2 = _softmax(act @ W2 + b2)
        delta2[np.arange(len(y)), y] -= 1.0
        slope = 1.0 - act * act if self.activation == "tanh" else (pre > 0.0).astype(np.float64)
        delta1 = (delta2 @ W2.T) * slope
        n = len(y)
        return np.concatenate(
            [
                (X.T @ delta1 + n * self.l2 * W1).ravel(),
                delta1.sum(axis=0),
                (act.T @ delta2 + n * self.l2 * W2).ravel(),
                delta2.sum(axis=0),
            ]
        )


class CNN(Model):
    """conv -> ReLU -> max pool -> [dense ReLU] -> dense; see ``common.learning.cnn``."""

    def __init__(
        self, n_features: int, n_classes: int, l2: float, channels: int, filters: int,
        kernel: int, pool: int, hidden: int,
    ) -> None:  # fmt: skip
        super().__init__(n_features, n_classes, l2)
        self.shapes = cnn.CNNShapes(n_features, n_classes, channels, filters, kernel, pool, hidden)

    @property
    def n_params(self) -> int:
        return self.shapes.n_params

    def init_params(self, seed: int) -> np.ndarray:
        """He-uniform weights (ReLU layers), Glorot-uniform output layer, zero biases."""
        rng = np.random.default_rng(seed)
        out = np.zeros(self.n_params, dtype=np.float64)
        for name, (fan_in, fan_out) in self.shapes.fan.items():
            if name not in self.shapes.offsets:
                continue
            a, b = self.shapes.offsets[name]
            lim = np.sqrt(6.0 / (fan_in + fan_out)) if name == "W" else np.sqrt(6.0 / fan_in)
            out[a:b] = rng.uniform(-lim, lim, b - a)
        return out

    def logits(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        parts = self.shapes.split(params)
        chunks = [
            cnn.forward(self.shapes, parts, X[i : i + cnn.CHUNK_ROWS])[0]
            for i in range(0, X.shape[0], cnn.CHUNK_ROWS)
        ]
        return np.concatenate(chunks) if chunks else np.zeros((0, self.n_classes))

    def _weight_norm2(self, params: np.ndarray) -> float:
        parts = self.shapes.split(params)
        return float(sum(np.sum(parts[k] * parts[k]) for k in self.shapes.fan if k in parts))

    def gradient_sum(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        self._check(params, X, y)
        parts = self.shapes.split(params)
        grad = np.zeros(self.n_params, dtype=np.float64)
        views = self.shapes.split(grad)
        for i in range(0, X.shape[0], cnn.CHUNK_ROWS):
            Xc, yc = X[i : i + cnn.CHUNK_ROWS], y[i : i + cnn.CHUNK_ROWS]
            logits, cache = cnn.forward(self.shapes, parts, Xc)
            delta = _softmax(logits)
            delta[np.arange(len(yc)), yc] -= 1.0
            for name, g in cnn.backward(self.shapes, parts, cache, delta).items():
                views[name] += g
        n = len(y)
        for name in self.shapes.fan:
            if name in views:
                views[name] += n * self.l2 * parts[name]
        return grad


def build_model(model_spec: dict[str, Any], n_features: int, n_classes: int) -> Model:
    """The model of ``model_spec`` (see ``validate_model_spec``) for the given data shape."""
    spec = validate_model_spec(model_spec)
    for name, value in (("n_features", n_features), ("n_classes", n_classes)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise LearningSpecError(name, f"must be an integer, got {value!r}")
    if spec["kind"] == "logreg":
        return LogisticRegression(int(n_features), int(n_classes), spec["l2"])
    if spec["kind"] == "cnn":
        return CNN(
            int(n_features), int(n_classes), spec["l2"], spec["channels"], spec["filters"],
            spec["kernel"], spec["pool"], spec["hidden"],
        )  # fmt: skip
    return MLP(int(n_features), int(n_classes), spec["l2"], spec["hidden"], spec["activation"])
