"""How many tokens an ONNX Runtime run should hold (``encoders.onnx.TOKENS``): texts a second on one thread, for
mpnet and e5ft, real English postings (aida, as the pipeline reads them whole) cut to one length, run 16, 8, 4, 2 and
1 at a time. Prints a JSON line per encoder and length. Not a test; run it on an idle machine:

    ESCOTAG_SHARED=../shared .venv/bin/python benchmarks/bench_run_tokens.py
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import numpy as np

from escotag.encoders import get_encoder
from escotag.text.postings import whole_posting

SHARED = Path(os.environ.get("ESCOTAG_SHARED", "../shared"))
TEXTS = 48
LENGTHS = {"mpnet": (256,), "e5ft": (256, 128, 64)}  # mpnet reads postings whole (256 tokens at most)


def _postings() -> list[str]:
    with (SHARED / "eval/postings/aida_genhard_en.csv").open(encoding="utf-8") as f:
        return [whole_posting(r["title"], r["description"]) for r in csv.DictReader(f)]


def main() -> None:
    texts = _postings()
    for name, lengths in LENGTHS.items():
        encoder = get_encoder(name)
        if name == "mpnet":
            ids = [e.ids for e in encoder._tokenizer.encode_batch(texts)]  # truncated at its 256 tokens
            run = encoder._mean_pooled
        else:
            ids = encoder._tokenizer.ids([encoder._prefix + t for t in texts])  # as E5Encoder reads them
            run = encoder._run
        for length in lengths:
            x = np.array([i[:length] for i in ids if len(i) >= length][:TEXTS], dtype=np.int64)
            run(x[:2])  # warm up
            rates = {}
            for n in (16, 8, 4, 2, 1):
                started = time.perf_counter()
                for i in range(0, len(x), n):
                    run(x[i : i + n])
                rates[f"{n} ({n * length} tokens)"] = round(len(x) / (time.perf_counter() - started), 2)
            print(json.dumps({"encoder": name, "tokens_a_text": length, "texts_per_s_one_thread": rates}), flush=True)


if __name__ == "__main__":
    main()
