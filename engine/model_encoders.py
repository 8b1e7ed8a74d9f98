"""The encoder (BERT) and the encoder-decoder (T5/BART) of engine/model.py.

Encoder: token + position (+ segment) embedding, bidirectional blocks (every position sees every other one,
except pad keys when key_padding says so), the stack's one outside norm (engine/model_parts.py), then heads:
- the masked-LM head, BERT's transform (dense, GELU, norm) and the output matrix tied to the token embedding;
- the pooler, tanh(dense(hidden of the first token)), BERT's sentence vector, always there;
- the pair head, two logits on the pooled vector (NSP: B follows A; SOP: in order), iff n_segments >= 2.

EncoderDecoder: one token embedding (and position embedding) shared by both stacks and, when tied, the output.
The encoder stack (n_layer blocks) reads the source bidirectionally; the decoder stack (decoder_layers blocks)
reads the target causally and, in each block, attends to the encoder's output (cross-attention, no position bias:
query and key positions belong to different texts). Each stack has its own outside norm. Generation caches the
decoder's self-attention keys/values, and computes the cross-attention keys/values of the source once.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn import functional as F

from engine.config import ConfigError, ModelConfig
from engine.model_parts import (
    Block,
    KVCache,
    Positions,
    TransformerBase,
    attend,
    lm_loss,
    make_norm,
)
from engine.prompt_tuning import n_soft, prepend, widen_padding


def _check_vocab(vocab_size: int) -> None:
    if vocab_size < 1:
        raise ConfigError(f"the vocabulary must hold at least one token, not {vocab_size}")


def _stack_parts(cfg: ModelConfig, blocks: list[nn.Module], prefix: str = "") -> dict[str, nn.Module]:
    """A stack's blocks and its one norm outside them: ln_e (post-norm, on the embeddings) or ln_f (pre-norm)."""
    return {
        f"{prefix}h": nn.ModuleList(blocks),
        f"{prefix}ln_{'e' if cfg.norm_position == 'post' else 'f'}": make_norm(cfg),
    }


class _Stacks(TransformerBase):
    """Embedding in and out of a stack, for the encoder and the encoder-decoder."""

    lm_head: nn.Linear

    def embed_stack(self, idx: torch.Tensor, past: int, prefix: str, segments=None) -> tuple[torch.Tensor, Positions]:
        self.check_length(past + idx.size(1))
        pos = self.positions(past, idx.size(1), idx.device)
        x = self.token_embedding(idx, pos)
        if segments is not None:
            x = x + self.transformer.wse(segments)
        elif "wse" in self.transformer:
            x = x + self.transformer.wse.weight[0]  # no segments given: every token is in the first one
        if f"{prefix}ln_e" in self.transformer:
            x = self.transformer[f"{prefix}ln_e"](x)
        return self.transformer.drop(x), pos

    def finish_stack(self, x: torch.Tensor, prefix: str) -> torch.Tensor:
        if f"{prefix}ln_f" in self.transformer:
            x = self.transformer[f"{prefix}ln_f"](x)
        return x

    def tie(self) -> None:
        if self.cfg.tie_embeddings:
            self.lm_head.weight = self.transformer.wte.weight  # one matrix reads tokens in and writes them out


class Encoder(_Stacks):
    """BERT: bidirectional blocks, masked-LM head, pooler, pair head (n_segments >= 2)."""

    def __init__(self, cfg: ModelConfig, vocab_size: int):
        super().__init__()
        cfg.validate()
        _check_vocab(vocab_size)
        self.cfg = cfg
        self.vocab_size = vocab_size
        E = cfg.n_embd
        parts: dict[str, nn.Module] = dict(wte=nn.Embedding(vocab_size, E), drop=nn.Dropout(cfg.dropout))
        if cfg.n_segments > 0:
            parts["wse"] = nn.Embedding(cfg.n_segments, E)
        parts.update(_stack_parts(cfg, [Block(cfg, causal=False) for _ in range(cfg.n_layer)]))
        self.transformer = nn.ModuleDict(parts)
        self.setup_positions(cfg)
        self.mlm_dense = nn.Linear(E, E, bias=cfg.bias)
        self.mlm_norm = make_norm(cfg)
        self.lm_head = nn.Linear(E, vocab_size, bias=False)
        self.tie()
        self.pooler = nn.Linear(E, E, bias=cfg.bias)
        self.pair_head = nn.Linear(E, 2, bias=cfg.bias) if cfg.n_segments >= 2 else None
        self.init_weights({"transformer.h.": 2 * cfg.n_layer})

    def encode(self, idx, segments=None, key_padding=None, return_attn=False, attn_mask=None):
        """hidden (B, T, E) [, attn: per layer (B, nh, T, T)]. segments (B, T) in [0, n_segments); key_padding
        (B, T) bool, True = a real token (pad keys get no attention); attn_mask (T, T) or (B, T, T) bool."""
        if segments is not None and "wse" not in self.transformer:
            raise ValueError("this encoder has no segment embeddings (Segments is 0)")
        n = n_soft(self)
        if n and attn_mask is not None:
            raise ValueError("a prompt-tuned model reads with the padding mask only")
        x, pos = self.embed_prompted(idx, segments, n) if n else self.embed_stack(idx, 0, "", segments)
        key_padding = widen_padding(key_padding, n)
        attn = []
        for block in self.transformer.h:
            x, att = block(x, pos, attn_mask, return_attn=return_attn, key_padding=key_padding)
            attn.append(att)
        x = self.finish_stack(x, "")[:, n:]  # one output per text token, as without the prompt
        attn = [a[:, :, n:, n:] if n and a is not None else a for a in attn]
        return (x, attn) if return_attn else x

    def embed_prompted(self, idx, segments, n: int) -> tuple[torch.Tensor, Positions]:
        """embed_stack with the N soft-prompt vectors first (engine/prompt_tuning.py): they take positions 0..N-1
        and the first segment, the text the positions after them."""
        self.check_length(n + idx.size(1))
        pos = self.positions(0, n + idx.size(1), idx.device)
        x = self.transformer.wte(idx)
        if segments is not None:
            x = x + self.transformer.wse(segments)
        x = prepend(self, x)
        if segments is None and "wse" in self.transformer:
            x = x + self.transformer.wse.weight[0]
        elif "wse" in self.transformer:
            x[:, :n] = x[:, :n] + self.transformer.wse.weight[0]
        x = self.add_positions(x, pos)
        if "ln_e" in self.transformer:
            x = self.transformer.ln_e(x)
        return self.transformer.drop(x), pos

    @property
    def context_size(self) -> int:
        """How many text tokens the encoder reads at a time: its context less a soft prompt's positions."""
        return self.cfg.block_size - n_soft(self)

    def lm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, T, V): the masked-LM head (BERT's transform, then the output matrix tied to the embedding)."""
        return self.lm_head(self.mlm_norm(F.gelu(self.mlm_dense(hidden))))

    def pool(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, E): BERT's pooler, tanh(dense(hidden of the first token))."""
        return torch.tanh(self.pooler(hidden[:, 0]))

    def pair_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, 2): is B the next sentence / are A and B in order (1) or not (0)."""
        if self.pair_head is None:
            raise ValueError("this encoder has no pair head: it needs Segments of 2 or more")
        return self.pair_head(self.pool(hidden))

    def forward(self, idx, targets=None, *, segments=None, key_padding=None, attn_mask=None, return_attn=False):
        """(logits (B, T, V), loss) [+ attn]: masked-LM logits at every position; the loss over targets != -1."""
        out = self.encode(idx, segments, key_padding, return_attn, attn_mask)
        hidden, attn = out if return_attn else (out, None)
        logits = self.lm_logits(hidden)
        loss = lm_loss(logits, targets)
        return (logits, loss, attn) if return_attn else (logits, loss)


# ------------------------------------------------------------------------------------------ encoder-decoder


class EncoderDecoderCache(KVCache):
    """The decoder's self-attention keys/values (a KVCache) and, per decoder layer, the cross-attention keys and
    values of the source, computed by the first decode call and kept until reset()."""

    def __init__(self, n_layer: int, batch_size: int, n_head: int, head_dim: int, max_len: int, device, dtype):
        super().__init__(n_layer, batch_size, n_head, head_dim, max_len, device, dtype)
        self.cross: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * n_layer

    def reset(self) -> None:
        super().reset()
        self.cross = [None] * len(self.cross)

    def reorder(self, rows: torch.Tensor) -> None:
        super().reorder(rows)
        self.cross = [None if kv is None else (kv[0][rows], kv[1][rows]) for kv in self.cross]


class CrossAttention(nn.Module):
    """Queries from the decoder, keys and values from the encoder's output (memory); every source token is
    visible except pads."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.head_dim = cfg.head_dim
        self.dropout = cfg.dropout
        self.c_q = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.c_kv = nn.Linear(cfg.n_embd, 2 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.attn_dropout = nn.Dropout(cfg.dropout)
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def heads(self, t: torch.Tensor) -> torch.Tensor:
        B, T, _ = t.size()
        return t.view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, nh, T, hd)

    def memory_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.c_kv(memory).split(memory.size(-1), dim=2)
        return self.heads(k), self.heads(v)  # (B, nh, S, hd) each

    def forward(
        self, x, memory, *, memory_padding=None, cache: EncoderDecoderCache | None = None, layer=0, return_attn=False
    ):
        B, T, C = x.size()
        q = self.heads(self.c_q(x))
        kv = cache.cross[layer] if cache is not None else None
        if kv is None:
            kv = self.memory_kv(memory)
            if cache is not None:
                cache.cross[layer] = kv
        mask = None if memory_padding is None else memory_padding[:, None, None, :].bool()  # (B, 1, 1, S)
        y, att = attend(
            q,
            kv[0].to(q.dtype),
            kv[1].to(q.dtype),
            mask=mask,
            is_causal=False,
            bias=None,
            dropout=self.attn_dropout,
            dropout_p=self.dropout if self.training else 0.0,
            return_attn=return_attn,
        )
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y)), att


class DecoderBlock(Block):
    """Causal self-attention, cross-attention to the encoder's output, MLP: three residual sub-layers."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg, causal=True)
        self.ln_3 = make_norm(cfg)
        self.cross_attn = CrossAttention(cfg)

    def forward(  # type: ignore[override]  # it also reads the encoder's output
        self, x, pos: Positions, memory, *, memory_padding=None, kv_cache=None, layer=0, return_attn=False
    ):
        """(x, self-attention weights, cross-attention weights); weights None unless return_attn."""

        def self_attn(h):
            return self.attn(h, pos, kv_cache=kv_cache, layer=layer, return_attn=return_attn)

        def cross_attn(h):
            return self.cross_attn(
                h, memory, memory_padding=memory_padding, cache=kv_cache, layer=layer, return_attn=return_attn
            )

        x, att = self.sublayer(x, self.ln_1, self_attn)
        x, cross = self.sublayer(x, self.ln_3, cross_attn)
        x, _ = self.sublayer(x, self.ln_2, lambda h: (self.mlp(h), None))
        return x, att, cross


class EncoderDecoder(_Stacks):
    """T5/BART: encoder stack, decoder stack with cross-attention, shared embeddings, tied output."""

    def __init__(self, cfg: ModelConfig, vocab_size: int):
        super().__init__()
        cfg.validate()
        _check_vocab(vocab_size)
        self.cfg = cfg
        self.vocab_size = vocab_size
        parts: dict[str, nn.Module] = dict(wte=nn.Embedding(vocab_size, cfg.n_embd), drop=nn.Dropout(cfg.dropout))
        parts.update(_stack_parts(cfg, [Block(cfg, causal=False) for _ in range(cfg.n_layer)]))
        parts.update(_stack_parts(cfg, [DecoderBlock(cfg) for _ in range(cfg.decoder_layers)], "dec_"))
        self.transformer = nn.ModuleDict(parts)
        self.setup_positions(cfg)
        self.lm_head = nn.Linear(cfg.n_embd, vocab_size, bias=False)
        self.tie()
        self.init_weights({"transformer.h.": 2 * cfg.n_layer, "transformer.dec_h.": 3 * cfg.decoder_layers})

    def new_kv_cache(self, batch_size: int, device, dtype=None) -> EncoderDecoderCache:
        dtype = dtype or self.lm_head.weight.dtype
        c = self.cfg
        return EncoderDecoderCache(c.decoder_layers, batch_size, c.n_head, c.head_dim, c.block_size, device, dtype)

    def encode(self, src, src_padding=None, return_attn=False):
        """memory (B, S, E) [, attn: per encoder layer (B, nh, S, S)]; src_padding (B, S) bool, True = real."""
        x, pos = self.embed_stack(src, 0, "")
        attn = []
        for block in self.transformer.h:
            x, att = block(x, pos, return_attn=return_attn, key_padding=src_padding)
            attn.append(att)
        x = self.finish_stack(x, "")
        return (x, attn) if return_attn else x

    def decode(self, tgt, memory, *, src_padding=None, kv_cache: EncoderDecoderCache | None = None, return_attn=False):
        """logits (B, Tt, V) [, {"decoder": per layer (B, nh, Tt, Tt), "cross": (B, nh, Tt, S)}]. With kv_cache,
        tgt holds only the new tokens and positions continue from kv_cache.length; the source's cross-attention
        keys/values are computed on the first call and reused after it."""
        B, T = tgt.size()
        past = kv_cache.length if kv_cache is not None else 0
        self.check_length(past + T, "target")
        if kv_cache is not None and kv_cache.batch_size != B:
            raise ValueError(f"the KV cache holds {kv_cache.batch_size} sequences but {B} were given")
        x, pos = self.embed_stack(tgt, past, "dec_")
        attn: dict[str, list] = {"decoder": [], "cross": []}
        for layer, block in enumerate(self.transformer.dec_h):
            x, att, cross = block(
                x, pos, memory, memory_padding=src_padding, kv_cache=kv_cache, layer=layer, return_attn=return_attn
            )
            attn["decoder"].append(att)
            attn["cross"].append(cross)
        if kv_cache is not None:
            kv_cache.advance(T)
        logits = self.lm_head(self.finish_stack(x, "dec_"))
        return (logits, attn) if return_attn else logits

    def forward(self, src, tgt, targets=None, *, src_padding=None, return_attn=False):
        """(logits (B, Tt, V), loss) [+ attn {"encoder", "decoder", "cross"}]; tgt is the decoder's input (the
        target shifted right behind the decoder start token); the loss is over targets != -1."""
        self.check_length(src.size(1), "source")
        if return_attn:
            memory, enc_attn = self.encode(src, src_padding, return_attn=True)
            logits, attn = self.decode(tgt, memory, src_padding=src_padding, return_attn=True)
            return logits, lm_loss(logits, targets), {"encoder": enc_attn, **attn}
        memory = self.encode(src, src_padding)
        logits = self.decode(tgt, memory, src_padding=src_padding)
        return logits, lm_loss(logits, targets)
