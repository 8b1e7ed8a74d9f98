"""The parts every architecture in engine/model.py is built from: positions, norms, attention, MLPs, the block.

Positions (ModelConfig.pos_encoding): "learned" and "sinusoidal" add a vector per position to the token
embedding; "rope" rotates queries and keys by their position; "alibi" (Press et al. 2022, "Train Short, Test
Long") adds nothing to the embedding and instead biases every self-attention score by -m * |i - j|, m a per-head
slope from a geometric sequence, so nearer keys weigh more. In causal attention the mask hides j > i, so the bias
there is -m * (i - j) as the paper has it; an encoder sees both sides, -m * |i - j|; cross-attention has no bias
(query and key positions belong to different texts). Blocks get a `Positions` with what they need.

Norm position (ModelConfig.norm_position): "pre" blocks compute x + f(norm(x)) (GPT-2, LLaMA): the residual stream
is never normalised inside the stack, so the stack ends in a final norm (ln_f). "post" blocks compute
norm(x + f(x)) (the 2017 Transformer, BERT): every block already ends in a norm, so there is no final norm;
instead the embeddings are normalised before the first block (BERT's embedding LayerNorm, ln_e), so each block
reads unit-scale inputs from the start. Either way a stack has one norm outside its blocks.

Two attention paths compute the same thing:
- the fast path (training, generation) calls F.scaled_dot_product_attention with a boolean mask, an ALiBi float
  bias, or is_causal for the plain decoder, and never materialises weights;
- the inspect path (return_attn=True) computes softmax(QK^T / sqrt(d) + bias) explicitly so weights can be shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
from torch.nn import functional as F

from engine.config import ModelConfig
from engine.lora import linear_weight


class KVCache:
    """Keys and values of every layer for the tokens seen so far, preallocated up to block_size.

    forward(idx, kv_cache=cache) writes the new tokens' keys/values at [length, length + T) in each layer
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

    def reorder(self, rows: torch.Tensor) -> None:
        """Keep the given batch rows, in that order (beam search: each row follows its beam's parent)."""
        self.k = [k[rows] for k in self.k]
        self.v = [v[rows] for v in self.v]
        self.batch_size = len(rows)


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


def alibi_slopes(n_head: int) -> torch.Tensor:
    """ALiBi's per-head slopes (n_head,): 2^(-8/n), 2^(-16/n), ... for n a power of two; otherwise those of the
    nearest lower power of two, then every other slope of the next power of two (the paper's reference code)."""

    def geometric(n: int) -> list[float]:
        first = 2.0 ** (-8.0 / n)
        return [first ** (i + 1) for i in range(n)]

    lower = 2 ** int(math.floor(math.log2(n_head)))
    slopes = geometric(lower) + geometric(2 * lower)[0::2][: n_head - lower]
    return torch.tensor(slopes, dtype=torch.float32)


@dataclass
class Positions:
    """What the blocks need to know about the positions of the T tokens they get: `index` (T,) the positions
    themselves (start, start + 1, ...); `rope` the (cos, sin) rows of those positions; `alibi` the per-head slopes."""

    start: int
    index: torch.Tensor
    rope: tuple[torch.Tensor, torch.Tensor] | None = None
    alibi: torch.Tensor | None = None
    _biases: dict = field(default_factory=dict, repr=False, compare=False)  # one per key count, for every layer

    def bias(self, n_keys: int) -> torch.Tensor | None:
        """ALiBi's score bias (nh, T, n_keys), -slope * |query position - key position|, for keys at the n_keys
        positions that end with the last query (a cache holds the earlier ones); None without ALiBi."""
        if self.alibi is None:
            return None
        if n_keys not in self._biases:
            end = self.start + self.index.numel()
            keys = torch.arange(end - n_keys, end, device=self.index.device)
            distance = (self.index[:, None] - keys[None, :]).abs().float()  # (T, n_keys)
            self._biases[n_keys] = -self.alibi.to(distance.device)[:, None, None] * distance  # (nh, T, n_keys)
        return self._biases[n_keys]


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


def attention_mask(
    T: int,
    n_keys: int,
    *,
    causal: bool,
    attn_mask: torch.Tensor | None,
    key_padding: torch.Tensor | None,
    materialize: bool,
    device,
) -> tuple[torch.Tensor | None, bool]:
    """(boolean mask broadcastable to (B, nh, T, n_keys) with True = may see, or None for all; is_causal).

    attn_mask, bool (T, n_keys) or (B, T, n_keys), replaces the causal mask. A causal mask is only built when it has to
    be (materialize: the inspect path or an ALiBi bias, or keys cached from earlier calls): otherwise
    is_causal=True lets the fused kernel skip it. Query i sits at position past + i (past = n_keys - T) and may
    see every key up to and including that position; a single new token may see everything cached.
    """
    past = n_keys - T
    mask = None
    if attn_mask is not None:
        mask = attn_mask if attn_mask.dim() == 2 else attn_mask[:, None]  # (T, Tk) or (B, 1, T, Tk)
    elif causal and T > 1:
        if past == 0 and key_padding is None and not materialize:
            return None, True
        mask = torch.ones(T, n_keys, dtype=torch.bool, device=device).tril(diagonal=past)  # (T, Tk)
    if key_padding is not None:
        keys = key_padding[:, None, None, :].bool()  # (B, 1, 1, Tk)
        mask = keys if mask is None else mask & keys
    return mask, False


def attend(q, k, v, *, mask, is_causal: bool, bias, dropout: nn.Dropout, dropout_p: float, return_attn: bool):
    """softmax(q k^T / sqrt(d) + bias, masked) v for q (B, nh, T, hd), k and v (B, nh, Tk, hd): (y, weights or
    None). The inspect path (return_attn) computes the weights explicitly; the fast one fuses everything."""
    if return_attn:
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.size(-1)))  # (B, nh, T, Tk)
        if bias is not None:
            att = att + bias.to(att.dtype)
        if mask is not None:
            att = att.masked_fill(~mask, float("-inf"))
        att = F.softmax(att, dim=-1)
        return dropout(att) @ v, att
    if bias is not None:
        bias = bias.to(q.dtype)
        mask = bias if mask is None else bias.masked_fill(~mask, float("-inf"))
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=is_causal)
    return y, None


class SelfAttention(nn.Module):
    """Multi-head self-attention, causal (decoders) or bidirectional (encoders).

    `kv_x`, when given, is the stream keys and values come from (queries still from x): XLNet's query stream
    attends to the content stream with the same weights.
    """

    def __init__(self, cfg: ModelConfig, causal: bool = True):
        super().__init__()
        self.causal = causal
        self.n_head = cfg.n_head
        self.head_dim = cfg.head_dim
        self.dropout = cfg.dropout
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)  # q, k, v for all heads at once
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.attn_dropout = nn.Dropout(cfg.dropout)
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def heads(self, t: torch.Tensor) -> torch.Tensor:
        B, T, _ = t.size()
        return t.view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, nh, T, hd)

    def qkv(self, x: torch.Tensor, kv_x: torch.Tensor | None):
        C = x.size(-1)
        if kv_x is None:
            q, k, v = self.c_attn(x).split(C, dim=2)  # (B, T, C) each
        else:
            w_q, w_kv = linear_weight(self.c_attn).split([C, 2 * C])  # LoRA's update included
            b_q, b_kv = self.c_attn.bias.split([C, 2 * C]) if self.c_attn.bias is not None else (None, None)
            q = F.linear(x, w_q, b_q)
            k, v = F.linear(kv_x, w_kv, b_kv).split(C, dim=2)
        return self.heads(q), self.heads(k), self.heads(v)

    def forward(
        self,
        x,
        pos: Positions,
        *,
        attn_mask=None,
        key_padding=None,
        kv_x=None,
        kv_cache=None,
        layer=0,
        return_attn=False,
    ):
        B, T, C = x.size()
        q, k, v = self.qkv(x, kv_x)
        if pos.rope is not None:
            cos, sin = pos.rope
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if kv_cache is not None:
            if kv_x is not None:
                raise ValueError("a KV cache holds one stream; kv_x cannot be used with it")
            k, v = kv_cache.update(layer, k, v)  # (B, nh, past + T, hd) each
        bias = pos.bias(k.size(2))
        additive = attn_mask is not None and attn_mask.is_floating_point()
        if additive:  # a float mask is added to the scores (0 = may see, -inf = hidden) and replaces the causal one
            added = attn_mask if attn_mask.dim() == 2 else attn_mask[:, None]
            bias = added if bias is None else bias + added
        mask, is_causal = attention_mask(
            T,
            k.size(2),
            causal=self.causal and not additive,
            attn_mask=None if additive else attn_mask,
            key_padding=key_padding,
            materialize=return_attn or bias is not None,
            device=x.device,
        )
        y, att = attend(
            q,
            k,
            v,
            mask=mask,
            is_causal=is_causal,
            bias=bias,
            dropout=self.attn_dropout,
            dropout_p=self.dropout if self.training else 0.0,
            return_attn=return_attn,
        )
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
    """A transformer block: self-attention then the MLP, each a residual sub-layer with its norm before
    (pre-norm: x + f(norm(x))) or after (post-norm: norm(x + f(x)))."""

    def __init__(self, cfg: ModelConfig, causal: bool = True):
        super().__init__()
        self.post_norm = cfg.norm_position == "post"
        self.ln_1 = make_norm(cfg)
        self.attn = SelfAttention(cfg, causal)
        self.ln_2 = make_norm(cfg)
        self.mlp = SwiGLU(cfg) if cfg.mlp == "swiglu" else MLP(cfg)

    def sublayer(self, x, norm: nn.Module, f) -> tuple[torch.Tensor, object]:
        """One residual sub-layer; f(normed or raw input) -> (output, extra), the extra passed back."""
        if self.post_norm:
            out, extra = f(x)
            return norm(x + out), extra
        out, extra = f(norm(x))
        return x + out, extra

    def forward(self, x, pos: Positions, attn_mask=None, kv_x=None, return_attn=False, **kw):
        """(x, attention weights or None). kw: key_padding, kv_cache, layer (as SelfAttention takes them)."""
        if kv_x is not None and not self.post_norm:
            kv_x = self.ln_1(kv_x)  # keys and values read the other stream as the queries read x: normalised

        def attn(h):
            return self.attn(h, pos, attn_mask=attn_mask, kv_x=kv_x, return_attn=return_attn, **kw)

        x, att = self.sublayer(x, self.ln_1, attn)
        x, _ = self.sublayer(x, self.ln_2, lambda h: (self.mlp(h), None))
        return x, att


# ------------------------------------------------------------------------------------------- shared by the models


class TransformerBase(nn.Module):
    """What GPT, Encoder and EncoderDecoder share: positions, weight init, counting, the optimizer."""

    cfg: ModelConfig
    transformer: nn.ModuleDict

    def setup_positions(self, cfg: ModelConfig) -> None:
        if cfg.pos_encoding == "learned":
            self.transformer.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        # Fixed tables are rebuilt from the config, so they stay out of the state dict (persistent=False).
        if cfg.pos_encoding == "sinusoidal":
            self.register_buffer("pos_table", sinusoidal_table(cfg.block_size, cfg.n_embd), persistent=False)
        if cfg.pos_encoding == "rope":
            cos, sin = rope_tables(cfg.block_size, cfg.head_dim)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        if cfg.pos_encoding == "alibi":
            self.register_buffer("alibi_slopes", alibi_slopes(cfg.n_head), persistent=False)

    def check_length(self, n: int, what: str = "sequence") -> None:
        if n > self.cfg.block_size:
            raise ValueError(
                f"{what} of {n} tokens is longer than the model's context (block_size {self.cfg.block_size})"
            )

    def positions(self, past: int, T: int, device) -> Positions:
        index = torch.arange(past, past + T, device=device)  # (T,)
        rope = (self.rope_cos[index], self.rope_sin[index]) if self.cfg.pos_encoding == "rope" else None
        alibi = self.alibi_slopes if self.cfg.pos_encoding == "alibi" else None
        return Positions(past, index, rope, alibi)

    def token_embedding(self, idx, pos: Positions):
        """Token plus position embedding (B, T, E), before any norm or dropout."""
        return self.add_positions(self.transformer.wte(idx), pos)

    def add_positions(self, x, pos: Positions):
        """Vectors in the embedding space (B, T, E) with their position embedding added (learned, sinusoidal)."""
        if self.cfg.pos_encoding == "learned":
            x = x + self.transformer.wpe(pos.index)  # (T, E) broadcast over B
        elif self.cfg.pos_encoding == "sinusoidal":
            # The fixed table's entries are of size ~0.7 and the embeddings start at 0.02: unscaled, the positions
            # drown the tokens and the model learns only the unigram (the 2017 preset stayed at its loss). The
            # paper multiplies the embeddings by sqrt(n_embd) (section 3.4), which gives the tokens a fair share.
            x = x * math.sqrt(self.cfg.n_embd) + self.pos_table[pos.index].to(x.dtype)  # (T, E) broadcast over B
        return x

    def init_weights(self, stacks: dict[str, int]) -> None:
        """Normal(0, 0.02) for matrices and embeddings; then GPT-2's scaling of the projections that add into the
        residual stream, so its variance does not grow with depth: stacks maps a parameter-name prefix to how
        many residual additions that stack makes."""
        self.apply(self._init_module)
        for name, p in self.named_parameters():
            for prefix, additions in stacks.items():
                if name.startswith(prefix) and name.endswith(
                    ("attn.c_proj.weight", "mlp.c_proj.weight", "mlp.w2.weight")
                ):
                    nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(additions))

    @staticmethod
    def _init_module(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        """Trainable parameters, each shared tensor counted once (equals engine.config.param_count)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

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


def lm_loss(logits: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor | None:
    """Cross-entropy over the positions whose target is not -1 (None without targets)."""
    if targets is None:
        return None
    return F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.reshape(-1), ignore_index=-1)
