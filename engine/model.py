"""One configurable decoder-only transformer (GPT), in the style of nanoGPT: the parts first, the whole last.

Variants are chosen by ModelConfig strings: positions ("learned", "sinusoidal", "rope"), norm ("layernorm",
"rmsnorm"), MLP ("gelu", "swiglu"), tied embeddings and biases. engine.config.param_count mirrors this file
exactly; a test keeps the two in step, so change both together.

Two attention paths compute the same thing:
- the fast path (training, generation) calls F.scaled_dot_product_attention, which never materialises weights;
- the inspect path (return_attn=True) computes softmax(QK^T / sqrt(d)) explicitly so the weights can be shown.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch.nn import functional as F

from engine.config import ConfigError, ModelConfig


class KVCache:
    """Keys and values of every layer for the tokens seen so far, preallocated up to block_size.

    GPT.forward(idx, kv_cache=cache) writes the new tokens' keys/values at [length, length + T) in each layer
    and then advances `length`; positions of the new tokens continue from the old `length`.
    """

    def __init__(
        self, n_layer: int, batch_size: int, n_head: int, head_dim: int, max_len: int, device, dtype: torch.dtype
    ):
        shape = (batch_size, n_head, max_len, head_dim)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(n_layer)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(n_layer)]
        self.batch_size = batch_size
        self.max_len = max_len
        self.length = 0

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the new keys/values (B, nh, T, hd) of one layer; return all keys/values so far."""
        start, end = self.length, self.length + k.size(2)
        self.k[layer][:, :, start:end] = k
        self.v[layer][:, :, start:end] = v
        # The cache may be kept in another dtype than autocast computes in; attention needs one dtype.
        return self.k[layer][:, :, :end].to(k.dtype), self.v[layer][:, :, :end].to(v.dtype)

    def advance(self, n: int) -> None:
        self.length += n

    def reset(self) -> None:
        # Stale entries beyond `length` are never read, so there is no need to zero them.
        self.length = 0


# ----------------------------------------------------------------------------------------------- positions


def sinusoidal_table(block_size: int, n_embd: int) -> torch.Tensor:
    """The fixed sin/cos position table of 'Attention Is All You Need', shape (block_size, n_embd)."""
    pos = torch.arange(block_size, dtype=torch.float32).unsqueeze(1)  # (T, 1)
    freq = torch.exp(torch.arange(0, n_embd, 2, dtype=torch.float32) * (-math.log(10000.0) / n_embd))  # (ceil(E/2),)
    table = torch.zeros(block_size, n_embd)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: n_embd // 2])  # an odd n_embd has one cosine column fewer
    return table


def rope_tables(block_size: int, head_dim: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotary angles, each (block_size, head_dim // 2)."""
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))  # (hd/2,)
    angles = torch.outer(torch.arange(block_size, dtype=torch.float32), inv_freq)  # (T, hd/2)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[i], x[i + hd/2]) of each head by the angle of their position (GPT-NeoX/LLaMA layout).

    x is (B, nh, T, hd); cos and sin are (T, hd/2) for the positions of x's tokens.
    """
    x1, x2 = x.float().chunk(2, dim=-1)  # (B, nh, T, hd/2) each
    rotated = torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)  # (B, nh, T, hd)
    return rotated.type_as(x)


# ------------------------------------------------------------------------------------------------ the parts


class LayerNorm(nn.Module):
    """LayerNorm whose bias is optional (PyTorch's has no bias=False before 2.1; kept explicit for clarity)."""

    def __init__(self, ndim: int, bias: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class RMSNorm(nn.Module):
    """Root-mean-square norm with a weight only, for torch versions before nn.RMSNorm (2.4)."""

    def __init__(self, ndim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(ndim))

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


def make_norm(cfg: ModelConfig) -> nn.Module:
    if cfg.norm == "rmsnorm":
        return nn.RMSNorm(cfg.n_embd, eps=1e-5) if hasattr(nn, "RMSNorm") else RMSNorm(cfg.n_embd, eps=1e-5)
    return LayerNorm(cfg.n_embd, bias=cfg.bias)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.head_dim = cfg.head_dim
        self.dropout = cfg.dropout
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)  # q, k, v for all heads at once
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.attn_dropout = nn.Dropout(cfg.dropout)
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x, rope=None, kv_cache: KVCache | None = None, layer: int = 0, return_attn: bool = False):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)  # (B, T, C) each
        q = q.view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, nh, T, hd)
        k = k.view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, nh, T, hd)
        v = v.view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, nh, T, hd)
        if rope is not None:
            cos, sin = rope
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)

        past = 0
        if kv_cache is not None:
            past = kv_cache.length
            k, v = kv_cache.update(layer, k, v)  # (B, nh, past + T, hd) each

        # Query i sits at position past + i and may see every key up to and including that position.
        # Without a cache that is the plain causal mask; a single new token may see everything cached.
        mask = None
        if past and T > 1:
            mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(diagonal=past)  # (T, past + T)

        att = None
        if return_attn:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim))  # (B, nh, T, past + T)
            if mask is None and T > 1:
                mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()  # (T, T)
            if mask is not None:
                att = att.masked_fill(~mask, float("-inf"))
            att = F.softmax(att, dim=-1)
            y = self.attn_dropout(att) @ v  # (B, nh, T, hd)
        else:
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0, is_causal=past == 0 and T > 1
            )  # (B, nh, T, hd)

        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C): heads side by side again
        return self.resid_dropout(self.c_proj(y)), att


class MLP(nn.Module):
    """GPT-2's MLP: Linear, GELU, Linear."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, cfg.mlp_hidden, bias=cfg.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(cfg.mlp_hidden, cfg.n_embd, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class SwiGLU(nn.Module):
    """LLaMA's gated MLP: w2(silu(w1 x) * w3 x)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.w1 = nn.Linear(cfg.n_embd, cfg.mlp_hidden, bias=cfg.bias)
        self.w3 = nn.Linear(cfg.n_embd, cfg.mlp_hidden, bias=cfg.bias)
        self.w2 = nn.Linear(cfg.mlp_hidden, cfg.n_embd, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x):
        return self.dropout(self.w2(F.silu(self.w1(x)) * self.w3(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.ln_1 = make_norm(cfg)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = make_norm(cfg)
        self.mlp = SwiGLU(cfg) if cfg.mlp == "swiglu" else MLP(cfg)

    def forward(self, x, rope=None, kv_cache=None, layer=0, return_attn=False):
        a, att = self.attn(self.ln_1(x), rope, kv_cache, layer, return_attn)
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return x, att


# ------------------------------------------------------------------------------------------------ the whole


class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig, vocab_size: int):
        super().__init__()
        cfg.validate()
        if vocab_size < 1:
            raise ConfigError(f"the vocabulary must hold at least one token, not {vocab_size}")
        self.cfg = cfg
        self.vocab_size = vocab_size
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(vocab_size, cfg.n_embd),
                drop=nn.Dropout(cfg.dropout),
                h=nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)]),
                ln_f=make_norm(cfg),
            )
        )
        if cfg.pos_encoding == "learned":
            self.transformer.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        # Fixed tables are rebuilt from the config, so they stay out of the state dict (persistent=False).
        if cfg.pos_encoding == "sinusoidal":
            self.register_buffer("pos_table", sinusoidal_table(cfg.block_size, cfg.n_embd), persistent=False)
        if cfg.pos_encoding == "rope":
            cos, sin = rope_tables(cfg.block_size, cfg.head_dim)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.lm_head = nn.Linear(cfg.n_embd, vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.transformer.wte.weight  # one matrix reads tokens in and writes them out

        self.apply(self._init_weights)
        # GPT-2: scale the projections that add into the residual stream, so its variance does not grow with depth.
        for name, p in self.named_parameters():
            if name.endswith(("attn.c_proj.weight", "mlp.c_proj.weight", "mlp.w2.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        """Trainable parameters, each shared tensor counted once (equals engine.config.param_count)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def new_kv_cache(self, batch_size: int, device, dtype=None) -> KVCache:
        dtype = dtype or self.lm_head.weight.dtype
        return KVCache(
            self.cfg.n_layer, batch_size, self.cfg.n_head, self.cfg.head_dim, self.cfg.block_size, device, dtype
        )

    def forward(self, idx, targets=None, *, kv_cache: KVCache | None = None, return_attn: bool = False):
        """idx LongTensor (B,T). Returns (logits, loss). logits is (B,T,V) always (all positions).

        loss = cross-entropy over all positions when targets given (ignore_index=-1), else None.
        With kv_cache: idx holds only the NEW tokens; positions continue from kv_cache.length; the cache is
        updated in place. return_attn=True uses the explicit-softmax inspect path and returns
        (logits, loss, attn), attn a list per layer of (B, n_head, T_q, T_k) attention weights.
        """
        B, T = idx.size()
        past = kv_cache.length if kv_cache is not None else 0
        if past + T > self.cfg.block_size:
            raise ValueError(
                f"sequence of {past + T} tokens is longer than the model's context (block_size {self.cfg.block_size})"
            )
        if kv_cache is not None and kv_cache.batch_size != B:
            raise ValueError(f"the KV cache holds {kv_cache.batch_size} sequences but {B} were given")
        pos = torch.arange(past, past + T, device=idx.device)  # (T,)

        x = self.transformer.wte(idx)  # (B, T, E)
        if self.cfg.pos_encoding == "learned":
            x = x + self.transformer.wpe(pos)  # (T, E) broadcast over B
        elif self.cfg.pos_encoding == "sinusoidal":
            x = x + self.pos_table[pos].to(x.dtype)  # (T, E) broadcast over B
        rope = (self.rope_cos[pos], self.rope_sin[pos]) if self.cfg.pos_encoding == "rope" else None
        x = self.transformer.drop(x)

        attn = []
        for layer, block in enumerate(self.transformer.h):
            x, att = block(x, rope, kv_cache, layer, return_attn)
            attn.append(att)
        if kv_cache is not None:
            kv_cache.advance(T)
        x = self.transformer.ln_f(x)
        logits = self.lm_head(x)  # (B, T, V)

        loss = None
        if targets is not None:
            loss = F.cross_entropy(
                logits.view(-1, logits.size(-1)).float(), targets.reshape(-1), ignore_index=-1
            )  # over (B*T, V)
        if return_attn:
            return logits, loss, attn
        return logits, loss

    def configure_optimizer(self, weight_decay, learning_rate, betas, device_type: str) -> torch.optim.AdamW:
        """AdamW that decays matrices and embeddings only; biases and norm weights are left alone."""
        params = [p for p in self.parameters() if p.requires_grad]  # shared tensors appear once
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        # The fused CUDA kernel updates all parameters in one launch; AdamW has had it since torch 2.0.
        fused = True if device_type == "cuda" else None
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, fused=fused)
