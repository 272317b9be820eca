"""all-mpnet-base-v2 (MPNet) as an ONNX graph built from its sentence-transformers folder (config.json and
model.safetensors) without torch: standard ONNX ops, the same computation as transformers' MPNetModel in eval mode.
MPNet is BERT's layout plus a relative-position bias on every layer's attention scores (T5's buckets, one table
shared by the layers); positions count from the padding id + 1 as in fairseq."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .transformer_graph import GraphBuilder, Int8GraphBuilder

MAX_DISTANCE = 128  # transformers' MPNetEncoder.relative_position_bucket default
LINEAR = {"q": "attention.attn.q", "k": "attention.attn.k", "v": "attention.attn.v", "ao": "attention.attn.o",
          "fi": "intermediate.dense", "fo": "output.dense"}
NORMS = {"aln": "attention.LayerNorm", "oln": "output.LayerNorm"}


def relative_buckets(relative: np.ndarray, num_buckets: int, max_distance: int = MAX_DISTANCE) -> np.ndarray:
    """T5's bidirectional buckets of relative positions (key - query), in float32 as transformers computes them."""
    n = -relative
    half = num_buckets // 2
    out = (n < 0).astype(np.int64) * half
    n = np.abs(n)
    exact = half // 2
    ratio = np.maximum(n, 1).astype(np.float32) / np.float32(exact)  # (n < exact takes the other branch)
    large = exact + (np.log(ratio) / np.float32(math.log(max_distance / exact)) * np.float32(half - exact)).astype(
        np.int64)
    return out + np.where(n < exact, n, np.minimum(large, half - 1))


def mpnet_graph(folder: Path, smoothing: Mapping[str, np.ndarray] | None = None) -> bytes:
    """The serialised ONNX model: inputs ``input_ids`` and ``attention_mask`` [batch, length] (int64), output
    ``last_hidden_state`` [batch, length, hidden]. Float32 products, or int8 ones with ``smoothing`` (factors per
    product input, ``Int8GraphBuilder``)."""
    from onnx import TensorProto, helper
    from safetensors.numpy import load_file

    config = json.loads((folder / "config.json").read_text())
    weights = {k.removeprefix("mpnet."): v for k, v in load_file(str(folder / "model.safetensors")).items()}
    hidden, heads, eps = config["hidden_size"], config["num_attention_heads"], config["layer_norm_eps"]
    pad = config.get("pad_token_id", 1)
    g = GraphBuilder() if smoothing is None else Int8GraphBuilder(smoothing)
    mask = g.node("Cast", ["attention_mask"], "mask", to=TensorProto.FLOAT)
    # positions: pad + 1, pad + 2, ... over the tokens, pad on padding
    counted = g.node("CumSum", ["attention_mask", g.const("axis1", np.array(1, np.int64))], "counted")
    positions = g.node("Add", [g.node("Mul", [counted, "attention_mask"], "counted.tokens"),
                               g.const("pad_id", np.array(pad, np.int64))], "positions")
    x = g.node("Add", [g.node("Gather", [g.const("emb.word", weights["embeddings.word_embeddings.weight"]),
                                         "input_ids"], "emb.words"),
                       g.node("Gather", [g.const("emb.pos", weights["embeddings.position_embeddings.weight"]),
                                         positions], "emb.positions")], "emb.sum")
    x = g.layer_norm(x, "emb.ln", weights["embeddings.LayerNorm.weight"], weights["embeddings.LayerNorm.bias"], eps)
    # relative-position bias [1, heads, length, length]: the bucket table's rows by (key - query), looked up once
    longest = config["max_position_embeddings"]
    table = weights["encoder.relative_attention_bias.weight"]  # [buckets, heads]
    by_offset = table[relative_buckets(np.arange(-longest, longest + 1), table.shape[0])]  # offset + longest
    length = g.node("Squeeze", [g.node("Shape", ["input_ids"], "length1", start=1, end=2)], "length")
    steps = g.node("Range", [g.const("zero", np.array(0, np.int64)), length, g.const("one_i", np.array(1, np.int64))],
                   "steps")
    offsets = g.node("Sub", [g.node("Unsqueeze", [steps, g.const("axis0", np.array([0], np.int64))], "keys"),
                             g.node("Unsqueeze", [steps, g.const("axis1v", np.array([1], np.int64))], "queries")],
                     "offsets")
    shifted = g.node("Add", [offsets, g.const("longest", np.array(longest, np.int64))], "offsets.shifted")
    relative = g.node("Gather", [g.const("rel.table", by_offset), shifted], "rel.bias")  # [length, length, heads]
    relative = g.node("Unsqueeze", [g.node("Transpose", [relative], "rel.t", perm=[2, 0, 1]), "axis0"], "rel")
    bias = g.node("Add", [relative, g.padding_bias(mask)], "bias.total")
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}"
        layer = {short: (weights[f"{p}.{name}.weight"], weights[f"{p}.{name}.bias"])
                 for short, name in (LINEAR | NORMS).items()}
        x = g.layer(x, f"l{i}", layer, bias, heads, hidden, eps)
    g.node("Identity", [x], "last_hidden_state")
    return g.serialised(
        "all-mpnet-base-v2",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "length"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "length"])],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "length", hidden])])
