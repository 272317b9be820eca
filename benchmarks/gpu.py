"""GPU speed of the torch encoder path (make bench-gpu; needs CUDA), end to end through escotag.

all-mpnet-base-v2's architecture with random weights (speed does not depend on the weights' values; the real
weights are too large to carry to a lent GPU machine), fp16, in a sentence-transformers folder read by escotag's
SentenceTransformerEncoder: titles/s on 30,000 English ESCO labels and postings/s on 3,000 1,500-character texts
built from ESCO descriptions (384 tokens, as the old service read them).

    python benchmarks/gpu.py TOKENIZER_DIR   # a folder holding all-mpnet-base-v2's tokenizer files (~1 MB)
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

MPNET = {"vocab_size": 30527, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
         "intermediate_size": 3072, "max_position_embeddings": 514, "relative_attention_num_buckets": 32,
         "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, "layer_norm_eps": 1e-05}


def random_mpnet(tokenizer_dir: str, out: Path) -> Path:
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, MPNetConfig, MPNetModel

    torch.manual_seed(0)
    body = out / "body"
    MPNetModel(MPNetConfig(**MPNET)).save_pretrained(body)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(body)
    transformer = models.Transformer(str(body), max_seq_length=384)
    pooling = models.Pooling(transformer.get_word_embedding_dimension(), "mean")
    folder = out / "random-mpnet"
    SentenceTransformer(modules=[transformer, pooling, models.Normalize()]).save(str(folder))
    return folder


def main() -> None:
    import torch

    from escotag.encoders.sentence_transformers import SentenceTransformerEncoder
    from escotag.esco import load_taxonomy

    assert torch.cuda.is_available(), "this benchmark needs a CUDA device"
    tx = load_taxonomy()
    titles = [v for o in tx.occupations for v in o.labels["en"].variants()][:30_000]
    blurbs = [o.labels["en"].description for o in tx.occupations if o.labels["en"].description]
    postings = [" ".join(blurbs[i : i + 4])[:1500] for i in range(0, 4 * 3000, 4)]
    out: dict = {"device": torch.cuda.get_device_name(0)}
    with tempfile.TemporaryDirectory() as tmp:
        encoder = SentenceTransformerEncoder(str(random_mpnet(sys.argv[1], Path(tmp))), device="cuda")
        encoder.encode(titles[:2048])  # warm-up
        for name, texts in (("titles", titles), ("postings", postings)):
            torch.cuda.synchronize()
            started = time.perf_counter()
            encoder.encode(texts)
            torch.cuda.synchronize()
            out[f"{name}_per_s"] = round(len(texts) / (time.perf_counter() - started))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
