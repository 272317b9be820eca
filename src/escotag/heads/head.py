"""Occupation classifier head: a softmax layer over the frozen encoder's vectors (EnV2's idea).

Trained with Adam on examples generated from ESCO, starting from each occupation's mean example vector
and pulled back towards it (weight decay to the start), so it begins as a nearest-prototype classifier and
learns which directions separate neighbouring occupations. Written with numpy because scikit-learn's
multinomial LogisticRegression needs minutes per language on 3,039 classes here and cannot start from the
prototypes; MLPClassifier cannot either.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np
from tqdm import tqdm

from ..index import exact


@dataclass(frozen=True)
class HeadConfig:
    """Training settings (fixed defaults; the temperatures are fitted on the ESCO dev split, the head's weight
    comes from real titles: training.TITLE_HEAD_WEIGHTS)."""

    epochs: int = 4
    learning_rate: float = 4e-3
    batch_size: int = 1024
    scale: float = 20.0  # logits are scale * cosine-like scores at the start
    decay: float = 1e-4  # pull towards the prototype start

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Head:
    weights: np.ndarray  # (dim, n_classes) float32
    bias: np.ndarray  # (n_classes,) float32
    scale: float

    @functools.cached_property
    def _exact(self) -> exact.Scaled:
        return exact.Scaled(self.weights)

    def logits(self, vectors: np.ndarray) -> np.ndarray:
        """Class scores on the scale of a cosine similarity: (n, n_classes), of unit-length vectors. An exact product
        (``index.exact``): a vector's scores do not depend on the batch it comes in."""
        return (self._exact.times(vectors) + self.bias) / self.scale


def prototypes(x: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Unit-length mean vector per class (zero for a class without examples)."""
    sums = np.zeros((n_classes, x.shape[1]), dtype=np.float32)
    np.add.at(sums, y, x)
    return sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-9)


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def fit_head(x: np.ndarray, y: np.ndarray, n_classes: int, config: HeadConfig | None = None, seed: int = 0,
             progress: bool = True) -> Head:
    """Train the head on examples x (n, dim) with class indices y (n,)."""
    config = config or HeadConfig()
    if len(x) == 0:
        raise ValueError("no training examples")
    rng = np.random.default_rng(seed)
    weights = (config.scale * prototypes(x, y, n_classes).T).astype(np.float32)
    start = weights.copy()
    bias = np.zeros(n_classes, dtype=np.float32)
    params = [weights, bias]
    first = [np.zeros_like(p) for p in params]
    second = [np.zeros_like(p) for p in params]
    b1, b2, step = 0.9, 0.999, 0
    batches = range(0, len(x), config.batch_size)
    with tqdm(total=config.epochs * len(batches), desc="training head", unit="batch", disable=not progress) as bar:
        for _ in range(config.epochs):
            order = rng.permutation(len(x))
            for s in batches:
                idx = order[s : s + config.batch_size]
                xb, yb = x[idx], y[idx]
                grad = np.exp(log_softmax(xb @ weights + bias))
                grad[np.arange(len(yb)), yb] -= 1.0
                grad /= len(yb)
                grads = [xb.T @ grad + config.decay * (weights - start), grad.sum(axis=0)]
                step += 1
                for p, g, m, v in zip(params, grads, first, second, strict=True):
                    m *= b1
                    m += (1 - b1) * g
                    v *= b2
                    v += (1 - b2) * g * g
                    p -= config.learning_rate * (m / (1 - b1**step)) / (np.sqrt(v / (1 - b2**step)) + 1e-8)
                bar.update()
    return Head(weights, bias, config.scale)
