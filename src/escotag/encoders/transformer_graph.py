"""BERT-layout transformer encoders (post-LayerNorm layers: e5, mpnet) as ONNX graphs built from weight arrays,
with standard ONNX ops and without torch (``e5_graph``, ``mpnet_graph``): float32 products, or int8 products
(``Int8GraphBuilder``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

OPSET = 20  # LayerNormalization (17), Gelu (20)
# SmoothQuant's migration strength: 0.6 kept e5ft's vectors closest to float32's on real titles and German
# description leads (0.5: cosine 0.99943 mean, 0.6: 0.99947; without smoothing 0.99859)
MIGRATION = 0.6
GELU_FLOOR = 0.17  # -min GELU(x) = 0.16997 (at x = -0.75)
# The int8 graph's revision, in every cache key and graph folder that holds its vectors: a change to how it rounds
# changes a text's vector (r2, 2026-12-05: rounding by a multiply and Cast's truncation, not Div and Round)
INT8 = "int8-r2"
LayerWeights = Mapping[str, tuple[np.ndarray, np.ndarray]]  # q k v ao fi fo: (weight [out, in], bias); aln oln: (g, b)


class GraphBuilder:
    """Nodes and initializers of one ONNX graph; each helper returns the name of its output."""

    def __init__(self) -> None:
        from onnx import numpy_helper

        self._from_array = numpy_helper.from_array
        self.nodes: list = []
        self.initializers: list = []
        self._names: set[str] = set()
        self.ops: dict[str, str] = {}  # each node's output -> its op

    def const(self, name: str, value: np.ndarray) -> str:
        """An initializer (added once: a later call with the same name reuses the first)."""
        if name not in self._names:
            self._names.add(name)
            value = np.asarray(value)  # (ascontiguousarray would make a scalar a vector of one)
            value = value if value.flags.c_contiguous else value.copy(order="C")
            self.initializers.append(self._from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs: object) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        self.ops[output] = op
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
        opsets = [helper.make_opsetid("", OPSET)]
        if any(node.domain == "com.microsoft" for node in self.nodes):
            opsets.append(helper.make_opsetid("com.microsoft", 1))
        return helper.make_model(graph, opset_imports=opsets).SerializeToString()


class Int8GraphBuilder(GraphBuilder):
    """Every linear map as an integer product: each token's input on 255 levels of its own scale, each weight column
    on 255 levels of its own, products summed in int32. Integer sums are exact in any order, so a text's vector does
    not depend on its batch nor on the kernel; the CPU's int8 dot-product units run them about four times as fast
    as float32 products.

    ``smoothing`` (SmoothQuant): for an input named here, its channels divided by these factors (powers of two, so
    exactly) and the weights' rows multiplied by them: a few channels with large activations would otherwise take
    most of every token's 255 levels."""

    def __init__(self, smoothing: Mapping[str, np.ndarray]) -> None:
        super().__init__()
        self.smoothing = smoothing
        self._quantised: dict[str, tuple[str, str]] = {}

    def _quantise(self, x: str) -> tuple[str, str]:
        """x as uint8 (zero point 128) and its scale per token [..., 1]; once per input (q, k and v share theirs)."""
        if x not in self._quantised:
            from onnx import TensorProto

            source = x
            if x in self.smoothing:
                inverse = (1 / self.smoothing[x]).astype(np.float32)
                source = self.node("Mul", [x, self.const(f"{x}.smooth", inverse)], f"{x}.smoothed")
            last = self.const("last", np.array([-1], np.int64))
            if self.ops.get(x) == "Gelu" and x not in self.smoothing:  # never below -0.17: max, no Abs pass
                top = self.node("Max", [self.node("ReduceMax", [source, last], f"{x}.max", keepdims=1),
                                        self.const("gelu_floor", np.float32(GELU_FLOOR))], f"{x}.top")
            else:
                top = self.node("ReduceMax", [self.node("Abs", [source], f"{x}.abs"), last], f"{x}.top", keepdims=1)
            top = self.node("Max", [top, self.const("tiny", np.float32(1e-12))], f"{x}.top1")
            scale = self.node("Mul", [top, self.const("per_level", np.float32(1 / 127))], f"{x}.scale")
            levels = self.node("Mul", [source, self.node("Div", [self.const("levels", np.float32(127)), top],
                                                         f"{x}.inverse")], f"{x}.levels")
            # + 128 (the zero point) + 0.5, then Cast's truncation: rounded to the nearest level in two passes
            levels = self.node("Add", [levels, self.const("zero_level", np.float32(128.5))], f"{x}.shifted")
            self._quantised[x] = (self.node("Cast", [levels], f"{x}.u8", to=TensorProto.UINT8), scale)
        return self._quantised[x]

    def linear(self, x: str, name: str, w: np.ndarray, b: np.ndarray) -> str:
        levels, scale = self._quantise(x)
        weights = w.T.astype(np.float64)  # [in, out]
        if x in self.smoothing:
            weights *= self.smoothing[x][:, None]
        column = np.maximum(np.abs(weights).max(axis=0), 1e-12) / 127
        wq = np.round(weights / column).astype(np.int8)
        # ONNX Runtime's fused kernel scales the int32 product by column (its per-row scale gave wrong products on
        # real activations with onnxruntime 1.32: a row's scale is applied after, then the bias)
        y = self.node("MatMulIntegerToFloat", [levels, self.const(f"{name}.wq", wq), self.const("one", np.float32(1)),
                                               self.const(f"{name}.columns", column.astype(np.float32)),
                                               self.const("zero_point", np.array(128, np.uint8))], f"{name}.mm",
                      domain="com.microsoft")
        y = self.node("Mul", [y, scale], f"{name}.scaled")
        return self.node("Add", [y, self.const(f"{name}.b", b.astype(np.float32))], f"{name}.out")


def product_inputs(layers: int) -> dict[str, tuple[str, ...]]:
    """Each layer's smoothed product inputs (graph names) and the linear maps that read them. The FFN's output
    projection reads GELU's output: smoothing cannot be folded into it for free, and it gains nothing from it."""
    found = {}
    for i in range(layers):
        found["emb.ln" if i == 0 else f"l{i - 1}.oln"] = (f"l{i}.q", f"l{i}.k", f"l{i}.v")
        found[f"l{i}.ctx.merged"] = (f"l{i}.ao",)
        found[f"l{i}.aln"] = (f"l{i}.fi",)
    return found


def activation_peaks(graph: bytes, layers: int, feeds: Iterable[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per channel, the largest |activation| of every smoothed product input of this float32 graph, over these
    inputs."""
    import onnx

    from .onnx import cpu_session

    model = onnx.load_from_string(graph)
    names = list(product_inputs(layers))
    model.graph.output.extend(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in names)
    session = cpu_session(model.SerializeToString())
    peaks: dict[str, np.ndarray] = {}
    for feed in feeds:
        for name, value in zip(names, session.run(names, feed), strict=True):
            peak = np.abs(value).reshape(-1, value.shape[-1]).max(axis=0)
            peaks[name] = np.maximum(peaks[name], peak) if name in peaks else peak
    return peaks


def smoothing_factors(peaks: Mapping[str, np.ndarray], weights: Mapping[str, np.ndarray], layers: int,
                      migration: float = MIGRATION) -> dict[str, np.ndarray]:
    """SmoothQuant's factor per input channel, peak^m / weight peak^(1-m), rounded to a power of two (so that
    dividing by it is exact and a last-bit difference in a peak seldom changes it); ``weights``: each linear
    map's weight [out, in] by name (``l3.q``)."""
    factors = {}
    for name, maps in product_inputs(layers).items():
        weight_peak = np.max([np.abs(weights[m]).max(axis=0) for m in maps], axis=0)
        raw = np.maximum(peaks[name], 1e-6) ** migration / np.maximum(weight_peak, 1e-6) ** (1 - migration)
        factors[name] = (2.0 ** np.round(np.log2(raw))).astype(np.float32)
    return factors
