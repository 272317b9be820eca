"""The contrastive loss of ``escotag finetune``: symmetric InfoNCE over a batch's in-batch negatives, and its cached
form (GradCache), which takes the same gradient for a batch larger than one backward pass can hold."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .pairs import Pair

if TYPE_CHECKING:
    import torch


def _negative_mask(batch: list[Pair], groups: list[str] | None) -> np.ndarray:
    """True where positive j must not count as a negative of anchor i (j != i)."""
    concept = np.array([p.concept for p in batch])
    text = np.array([p.positive for p in batch], dtype=object)
    mask = (concept[:, None] == concept[None, :]) | (text[:, None] == text[None, :])
    if groups is not None:
        group = np.array([groups[p.concept] for p in batch], dtype=object)
        mask |= group[:, None] == group[None, :]
    np.fill_diagonal(mask, False)
    return mask


def contrastive_loss(vectors: torch.Tensor, batch: list[Pair], temperature: float,
                     groups: list[str] | None = None) -> torch.Tensor:
    """Symmetric InfoNCE of a batch's vectors (anchors, then positives), other positives of the same concept, text
    or (with groups) ISCO unit group masked out of the negatives."""
    import torch

    anchors, positives = vectors[: len(batch)], vectors[len(batch) :]
    logits = anchors @ positives.T / temperature
    masked = torch.from_numpy(_negative_mask(batch, groups))
    logits = logits.masked_fill(masked.to(logits.device), float("-inf"))
    target = torch.arange(len(batch), device=logits.device)
    return (torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target)) / 2


def cached_backward(encode: Callable[[Sequence[list[int]]], torch.Tensor], ids: Sequence[list[int]],
                    loss_of: Callable[[torch.Tensor], torch.Tensor], texts: int) -> torch.Tensor:
    """Back-propagate loss_of(encode(ids)) holding the activations of only ``texts`` texts at a time (GradCache,
    Gao et al. 2021): every vector first without a graph, the loss's gradient with respect to the vectors, then
    each group of texts encoded again with its graph and given its share of that gradient. The parameters get the
    whole batch's gradient for one more forward pass; returns the loss (detached)."""
    import torch

    with torch.no_grad():
        vectors = encode(ids)
    vectors.requires_grad_(True)
    loss = loss_of(vectors)
    loss.backward()
    for start in range(0, len(ids), texts):
        encode(ids[start : start + texts]).backward(vectors.grad[start : start + texts])
    return loss.detach()
