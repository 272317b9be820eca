"""BERT-layout transformer encoders (post-LayerNorm layers: e5, mpnet) as ONNX graphs built from weight arrays,
with standard ONNX ops and without torch (``e5_graph``, ``mpnet_graph``)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

OPSET = 20  # LayerNormalization (17), Gelu (20)
LayerWeights = Mapping[str, tuple[np.ndarray, np.ndarray]]  # q k v ao fi fo: (weight [out, in], bias); aln oln: (g, b)


class GraphBuilder:
    """Nodes and initializers of one ONNX graph; each helper returns the name of its output."""

    def __init__(self) -> None:
        from onnx import numpy_helper

        self._from_array = numpy_helper.from_array
        self.nodes: list = []
        self.initializers: list = []
        self._names: set[str] = set()

    def const(self, name: str, value: np.ndarray) -> str:
        """An initializer (added once: a later call with the same name reuses the first)."""
        if name not in self._names:
            self._names.add(name)
            self.initializers.append(self._from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs: object) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def linear(self, x: str, name: str, w: np.ndarray, b: np.ndarray) -> str:
        y = self.node("MatMul", [x, self.const(f"{name}.w", w.T.astype(np.float32))], f"{name}.mm")
        return self.node("Add", [y, self.const(f"{name}.b", b.astype(np.float32))], f"{name}.out")

    def layer_norm(self, x: str, name: str, gamma: np.ndarray, beta: np.ndarray, eps: float) -> str:
        return self.node("LayerNormalization", [x, self.const(f"{name}.g", gamma), self.const(f"{name}.beta", beta)],
                         name, axis=-1, epsilon=float(eps))

    def layer(self, x: str, p: str, w: LayerWeights, bias: str, heads: int, hidden: int, eps: float) -> str:
        """One encoder layer: self-attention with an additive bias on the scores (padding, relative positions),
        residual and LayerNorm, a GELU feed-forward, residual and LayerNorm."""
        split = self.const("split_shape", np.array([0, 0, heads, hidden // heads], np.int64))
        merge = self.const("merge_shape", np.array([0, 0, hidden], np.int64))
        scale = self.const("scale", np.array((hidden // heads) ** -0.5, np.float32))
        qkv = {}
        for name, perm in (("q", [0, 2, 1, 3]), ("k", [0, 2, 3, 1]), ("v", [0, 2, 1, 3])):
            y = self.node("Reshape", [self.linear(x, f"{p}.{name}", *w[name]), split], f"{p}.{name}.heads")
            qkv[name] = self.node("Transpose", [y], f"{p}.{name}.t", perm=perm)
        scores = self.node("Mul", [self.node("MatMul", [qkv["q"], qkv["k"]], f"{p}.qk"), scale], f"{p}.scaled")
        probs = self.node("Softmax", [self.node("Add", [scores, bias], f"{p}.scores")], f"{p}.probs", axis=-1)
        ctx = self.node("Transpose", [self.node("MatMul", [probs, qkv["v"]], f"{p}.ctx")], f"{p}.ctx.t",
                        perm=[0, 2, 1, 3])
        ctx = self.node("Reshape", [ctx, merge], f"{p}.ctx.merged")
        x = self.layer_norm(self.node("Add", [x, self.linear(ctx, f"{p}.ao", *w["ao"])], f"{p}.res1"), f"{p}.aln",
                            *w["aln"], eps)
        h = self.node("Gelu", [self.linear(x, f"{p}.fi", *w["fi"])], f"{p}.gelu")
        return self.layer_norm(self.node("Add", [x, self.linear(h, f"{p}.fo", *w["fo"])], f"{p}.res2"), f"{p}.oln",
                               *w["oln"], eps)

    def padding_bias(self, mask: str) -> str:
        """0 for tokens, -1e9 for padding, shaped [batch, 1, 1, length], from a float mask [batch, length]."""
        pad = self.node("Sub", [self.const("one", np.array(1.0, np.float32)), mask], "pad")
        bias = self.node("Mul", [pad, self.const("neg", np.array(-1e9, np.float32))], "bias2d")
        return self.node("Unsqueeze", [bias, self.const("axes12", np.array([1, 2], np.int64))], "bias")

    def serialised(self, name: str, inputs: list, outputs: list) -> bytes:
        from onnx import helper

        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.initializers)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]).SerializeToString()
