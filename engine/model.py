"""The models: GPT (decoder-only), Encoder (BERT) and EncoderDecoder (T5/BART); build_model picks by model.arch.

- "decoder" (GPT, this file): causal self-attention; each position predicts the next token. attn_mask replaces
  the causal mask (a prefix LM lets a prefix see itself both ways); embed / blocks with kv_x / head are the steps
  the permutation LM's two-stream attention reuses.
- "encoder" (engine/model_encoders.py): bidirectional self-attention, optional segment embeddings, the
  masked-LM head tied to the token embedding, a pooler over the first token and a sentence-pair head.
- "encoder-decoder" (engine/model_encoders.py): an encoder stack and a decoder stack whose blocks add
  cross-attention to the encoder's output; one token embedding for both sides and the output.

Variants are chosen by ModelConfig strings on every architecture: positions ("learned", "sinusoidal", "rope",
"alibi"), norm ("layernorm", "rmsnorm") and where it sits ("pre", "post"), MLP ("gelu", "swiglu"), tied
embeddings and biases; engine/model_parts.py explains each and where the one norm outside the blocks goes.
engine.config.param_count mirrors these files exactly; a test keeps the two in step, so change both together.

Two attention paths compute the same thing: the fast path (training, generation) calls
F.scaled_dot_product_attention, which never materialises weights; the inspect path (return_attn=True) computes
the softmax explicitly so the weights can be shown.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from engine.config import ConfigError, ModelConfig
from engine.model_encoders import Encoder, EncoderDecoder, EncoderDecoderCache
from engine.model_classifier import add_classifier
from engine.prompt_tuning import n_soft, prepend, widen_padding
from engine.model_parts import (
    MLP,
    Block,
    KVCache,
    LayerNorm,
    Positions,
    RMSNorm,
    SelfAttention,
    SwiGLU,
    TransformerBase,
    alibi_slopes,
    apply_rope,
    lm_loss,
    make_norm,
    rope_tables,
    sinusoidal_table,
)

__all__ = [
    "GPT",
    "Encoder",
    "EncoderDecoder",
    "EncoderDecoderCache",
    "KVCache",
    "build_model",
    "Block",
    "SelfAttention",
    "MLP",
    "SwiGLU",
    "LayerNorm",
    "RMSNorm",
    "Positions",
    "make_norm",
    "alibi_slopes",
    "apply_rope",
    "rope_tables",
    "sinusoidal_table",
]


def build_model(cfg: ModelConfig, vocab_size: int) -> nn.Module:
    """The model of cfg.arch: GPT, Encoder or EncoderDecoder, with a classification head when n_classes > 0."""
    cfg.validate()
    model: nn.Module
    if cfg.arch == "encoder":
        model = Encoder(cfg, vocab_size)
    elif cfg.arch == "encoder-decoder":
        model = EncoderDecoder(cfg, vocab_size)
    else:
        model = GPT(cfg, vocab_size)
    if cfg.n_classes:
        add_classifier(model, cfg.n_classes)
    return model


def check_vocab(vocab_size: int) -> None:
    if vocab_size < 1:
        raise ConfigError(f"the vocabulary must hold at least one token, not {vocab_size}")


class GPT(TransformerBase):
    """Decoder-only: token (+ position) embedding, causal blocks, final norm (pre-norm) and the LM head."""

    def __init__(self, cfg: ModelConfig, vocab_size: int):
        super().__init__()
        cfg.validate()
        check_vocab(vocab_size)
        self.cfg = cfg
        self.vocab_size = vocab_size
        # The modules are made in this order so a seed gives the same weights as before the other architectures.
        parts = dict(wte=nn.Embedding(vocab_size, cfg.n_embd), drop=nn.Dropout(cfg.dropout))
        parts["h"] = nn.ModuleList([Block(cfg, causal=True) for _ in range(cfg.n_layer)])
        parts["ln_e" if cfg.norm_position == "post" else "ln_f"] = make_norm(cfg)
        self.transformer = nn.ModuleDict(parts)
        self.setup_positions(cfg)
        self.lm_head = nn.Linear(cfg.n_embd, vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.transformer.wte.weight  # one matrix reads tokens in and writes them out
        self.init_weights({"transformer.h.": 2 * cfg.n_layer})

    def new_kv_cache(self, batch_size: int, device, dtype=None) -> KVCache:
        dtype = dtype or self.lm_head.weight.dtype
        return KVCache(
            self.cfg.n_layer, batch_size, self.cfg.n_head, self.cfg.head_dim, self.cfg.block_size, device, dtype
        )

    def embed(self, idx: torch.Tensor, past: int = 0) -> tuple[torch.Tensor, Positions]:
        """(x (B, T, E), pos): token and position embedding (normalised first with post-norm), after dropout;
        `pos` is what the blocks need about the positions past, past + 1, ... A prompt-tuned model puts its soft
        prompt first when a sequence starts (past 0): x then has n_soft more positions."""
        n = n_soft(self) if past == 0 else 0
        self.check_length(past + n + idx.size(1))
        pos = self.positions(past, n + idx.size(1), idx.device)
        x = self.transformer.wte(idx)
        x = self.add_positions(prepend(self, x) if n else x, pos)
        if "ln_e" in self.transformer:
            x = self.transformer.ln_e(x)
        return self.transformer.drop(x), pos

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, V): the final norm (pre-norm only; post-norm blocks end in one) and the LM head."""
        if "ln_f" in self.transformer:
            x = self.transformer.ln_f(x)
        return self.lm_head(x)

    @property
    def context_size(self) -> int:
        """How many text tokens the model reads at a time: its context less a soft prompt's positions."""
        return self.cfg.block_size - n_soft(self)

    def hidden_states(self, idx: torch.Tensor, key_padding: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, E): the last block's output after the final norm, the vector each position's logits come from."""
        x, pos = self.embed(idx)
        n = x.size(1) - idx.size(1)  # a soft prompt's positions, dropped from the output
        key_padding = widen_padding(key_padding, n)
        for block in self.transformer.h:
            x, _ = block(x, pos, None, key_padding=key_padding)
        x = self.transformer.ln_f(x) if "ln_f" in self.transformer else x
        return x[:, n:]

    def forward(
        self,
        idx,
        targets=None,
        *,
        kv_cache: KVCache | None = None,
        return_attn: bool = False,
        attn_mask: torch.Tensor | None = None,
        key_padding: torch.Tensor | None = None,
    ):
        """idx LongTensor (B,T). Returns (logits, loss). logits is (B,T,V) always (all positions).

        loss = cross-entropy over the positions whose target is not -1 when targets given, else None.
        With kv_cache: idx holds only the NEW tokens; positions continue from kv_cache.length; the cache is
        updated in place. attn_mask, bool (T, T_keys) or (B, T, T_keys) with True = the query may see the key,
        replaces the causal mask (T_keys = cached + new tokens); a float mask is added to the scores instead (0
        sees, -inf hides). key_padding (B, T) bool, True = a real token, hides pad keys from every query.
        return_attn=True uses the explicit-softmax inspect path and returns (logits, loss, attn), attn a list per
        layer of (B, n_head, T_q, T_k) weights.
        """
        B, T = idx.size()
        past = kv_cache.length if kv_cache is not None else 0
        if kv_cache is not None and kv_cache.batch_size != B:
            raise ValueError(f"the KV cache holds {kv_cache.batch_size} sequences but {B} were given")
        x, pos = self.embed(idx, past)
        n = x.size(1) - T  # a soft prompt's positions (prompt tuning), dropped from the outputs
        if n and attn_mask is not None:
            raise ValueError("a prompt-tuned model reads with the causal mask only")
        key_padding = widen_padding(key_padding, n)
        attn = []
        for layer, block in enumerate(self.transformer.h):
            x, att = block(
                x, pos, attn_mask, return_attn=return_attn, key_padding=key_padding, kv_cache=kv_cache, layer=layer
            )
            attn.append(att)
        if kv_cache is not None:
            kv_cache.advance(n + T)
        logits = self.head(x[:, n:])  # (B, T, V)
        loss = lm_loss(logits, targets)
        if return_attn:
            return logits, loss, [a[:, :, n:, n:] if n and a is not None else a for a in attn]
        return logits, loss
