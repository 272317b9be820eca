"""The fine-tuning step's profile (make bench-finetune): the shipped recipe's first steps (its pairs, order, model,
precision and loss), each phase timed, for each chunk size given, on the device ``escotag finetune`` would use (a
GPU when torch sees one; ESCOTAG_DEVICE chooses). Prints a JSON line per chunk size.

Not the trainer: ``escotag finetune`` runs the same model and loss with checkpoints; this only times a step's parts
(tokenising, forward, loss, backward, AdamW; merging the adapted weights and rounding them to Q4_0, alone). Run it on
an idle machine; needs torch (``escotag[finetune]``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from escotag.encoders.e5_file import E5File, E5Tokenizer, base_model_path, padded_chunks
from escotag.encoders.sentence_transformers import default_device
from escotag.esco import load_taxonomy
from escotag.finetune.loss import contrastive_loss
from escotag.finetune.model import CHUNK, E5Model
from escotag.finetune.pairs import LABELLED_REPEAT, esco_pairs, labelled_pairs
from escotag.finetune.train import FinetuneConfig, _bf16_units, _order, batch_ids
from escotag.text.postings import read_labelled

SHARED = Path(os.environ.get("ESCOTAG_SHARED", "../shared"))
LABELLED = SHARED / "eval/postings/jobbert_val_titles_en.csv"


def profile(pairs: list, chunk: int, steps: int, config: FinetuneConfig, device: str, skip: int = 2) -> dict:
    torch.manual_seed(config.seed)
    base = E5File(base_model_path())
    model = E5Model(base, config.rank, config.alpha).to(device)
    tokenizer = E5Tokenizer(base, config.max_tokens)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    order = _order(len(pairs), config.steps, config.batch_size, config.seed)
    autocast = _bf16_units(device)

    def now() -> float:  # CUDA runs asynchronously: a phase ends when its kernels have
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter()

    times: dict[str, list[float]] = {k: [] for k in ("tokenise", "forward", "loss", "backward", "optimizer", "step")}
    losses, real, padded = [], 0, 0
    for step in range(steps):
        t0 = now()
        batch = [pairs[i] for i in order[step]]
        ids = batch_ids(tokenizer, batch)
        t1 = now()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            vectors = model.encode(ids, chunk)
        t2 = now()
        loss = contrastive_loss(vectors, batch, config.temperature)
        t3 = now()
        loss.backward()
        t4 = now()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        t5 = now()
        for key, seconds in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t5 - t0), strict=True):
            times[key].append(seconds)
        losses.append(round(float(loss.detach()), 4))
        real += sum(map(len, ids))
        padded += sum(m.size for _, m, _ in padded_chunks(ids, base.pad, chunk))
    started = now()
    for layer in model.adapters().values():
        layer.merged()
    return {"device": device, "chunk": chunk, "bf16": autocast, "batch": config.batch_size, "steps_timed": steps - skip,
            **{f"{k}_s": round(float(np.mean(v[skip:])), 4) for k, v in times.items()},
            "merge_s": round(now() - started, 4), "padded_vs_real_tokens": round(padded / real, 3),
            "losses": losses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--chunks", help="chunk sizes to time, comma-separated (default: the device's and 64)")
    parser.add_argument("--batch-size", type=int, default=FinetuneConfig.batch_size)
    parser.add_argument("--labelled", type=Path, default=LABELLED, help="the recipe's real titles")
    args = parser.parse_args()
    device = default_device()
    chunks = args.chunks or f"{CHUNK.get(device.split(':')[0], CHUNK['cpu'])},64"
    config = FinetuneConfig(batch_size=args.batch_size)
    taxonomy = load_taxonomy()
    pairs = esco_pairs(taxonomy)
    if args.labelled.exists():  # the shipped recipe's real titles (fold 5 held out); ESCO pairs alone without them
        pairs += labelled_pairs(taxonomy, read_labelled(args.labelled), 4) * LABELLED_REPEAT
    for chunk in dict.fromkeys(map(int, chunks.split(","))):
        print(json.dumps(profile(pairs, chunk, args.steps, config, device)), flush=True)


if __name__ == "__main__":
    main()
