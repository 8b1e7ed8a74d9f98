"""What the Model panel's diagram draws, without Qt: one stack of boxes per part of the model (a decoder, an
encoder, or an encoder beside a decoder), the block each stack repeats, where its residual additions are (so
pre-norm and post-norm read differently) and whether its self-attention is causal.

studio/widgets/model_diagram.py paints a Diagram; tests read it here without a window.

Post-norm stacks end without a final norm: each block already ends with one (the original Transformer and
BERT do the same); pre-norm stacks end with one, as GPT-2 does.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.config import ModelConfig
from studio.state.config_fields import MLP_LABELS, NORM_LABELS

Box = tuple[str, str]  # (role, text); role: io | embed | norm | attn | cross | mlp | head

# How an embedding box says where positions come from.
POS_IN_DIAGRAM = {
    "learned": "+ learned positions",
    "sinusoidal": "+ sinusoidal positions",
    "rope": "(RoPE in attention)",
    "alibi": "(ALiBi in attention)",
}
POS_SHORT = {"learned": "+ learned pos.", "sinusoidal": "+ sinusoids", "rope": "(RoPE)", "alibi": "(ALiBi)"}


@dataclass(frozen=True)
class Stack:
    """One column of the diagram: boxes above the repeated block, the block (drawn once, "× n_layers"), the
    boxes below. residuals: per sub-layer of the block, (index of the box where the residual branch leaves the
    stream, index of the sub-layer whose result is added back) - pre-norm branches before the norm, post-norm
    at the sub-layer itself, its norm coming after the addition."""

    title: str
    inputs: tuple[Box, ...]
    block: tuple[Box, ...]
    n_layers: int
    outputs: tuple[Box, ...]
    residuals: tuple[tuple[int, int], ...]
    causal: bool  # the block's self-attention sees only earlier tokens

    def boxes(self) -> list[Box]:
        return [*self.inputs, *self.block, *self.outputs]


@dataclass(frozen=True)
class Diagram:
    """The whole model: one stack, or for an encoder-decoder the encoder beside the decoder, the encoder's
    output feeding every decoder block's cross-attention (`cross`)."""

    stacks: tuple[Stack, ...]
    cross: bool
    norm_position: str

    def boxes(self) -> list[Box]:
        return [box for stack in self.stacks for box in stack.boxes()]


def _block(m: ModelConfig, sublayers: list[Box]) -> tuple[tuple[Box, ...], tuple[tuple[int, int], ...]]:
    """A block's boxes with a norm per sub-layer (before it for pre-norm, after the addition for post-norm)."""
    norm: Box = ("norm", NORM_LABELS.get(m.norm, m.norm))
    boxes: list[Box] = []
    residuals = []
    for sub in sublayers:
        if m.norm_position == "post":
            residuals.append((len(boxes), len(boxes)))
            boxes += [sub, norm]
        else:
            residuals.append((len(boxes), len(boxes) + 1))
            boxes += [norm, sub]
    return tuple(boxes), tuple(residuals)


def _final_norm(m: ModelConfig) -> tuple[Box, ...]:
    return () if m.norm_position == "post" else (("norm", f"Final {NORM_LABELS.get(m.norm, m.norm)}"),)


def _mlp(m: ModelConfig, short: bool = False) -> Box:
    mlp = MLP_LABELS.get(m.mlp, m.mlp)
    if short:  # a column of an encoder-decoder has half the room
        return "mlp", f"MLP {mlp} {m.n_embd} → {m.mlp_hidden}"
    return "mlp", f"MLP ({mlp}, {m.n_embd} → {m.mlp_hidden} → {m.n_embd})"


def _heads(m: ModelConfig, short: bool = False) -> str:
    head_dim = m.n_embd // m.n_head if m.n_head else 0
    return f"{m.n_head} × {head_dim}" if short else f"{m.n_head} heads × {head_dim}"


def _tied(m: ModelConfig) -> str:
    return " (tied)" if m.tie_embeddings else ""


def _decoder(m: ModelConfig, vocab: int) -> Stack:
    pos = POS_IN_DIAGRAM.get(m.pos_encoding, m.pos_encoding)
    block, residuals = _block(m, [("attn", f"Causal self-attention: {_heads(m)}"), _mlp(m)])
    return Stack(
        "Decoder",
        (("io", "tokens (ids)"), ("embed", f"Token embedding {vocab:,} × {m.n_embd} {pos}")),
        block,
        m.n_layer,
        (*_final_norm(m), ("head", f"LM head {m.n_embd} → {vocab:,}{_tied(m)}"), ("io", "next-token probabilities")),
        residuals,
        causal=True,
    )


def _encoder(m: ModelConfig, vocab: int) -> Stack:
    pos = POS_IN_DIAGRAM.get(m.pos_encoding, m.pos_encoding)
    segments = f" + {m.n_segments} segments" if m.n_segments else ""
    block, residuals = _block(m, [("attn", f"Self-attention, both ways: {_heads(m)}"), _mlp(m)])
    pair = m.n_segments >= 2
    pooler = "Pooler (first token) → pair head, 2 classes" if pair else "Pooler (first token)"
    return Stack(
        "Encoder",
        (("io", "tokens (ids)"), ("embed", f"Token embedding {vocab:,} × {m.n_embd} {pos}{segments}")),
        block,
        m.n_layer,
        (
            *_final_norm(m),
            ("head", f"Masked-LM head {m.n_embd} → {vocab:,}{_tied(m)}"),
            ("head", pooler),
            ("io", "token probabilities, a pair label" if pair else "token probabilities at every position"),
        ),
        residuals,
        causal=False,
    )


def _encoder_decoder(m: ModelConfig, vocab: int) -> tuple[Stack, Stack]:
    pos = POS_SHORT.get(m.pos_encoding, m.pos_encoding)
    heads = _heads(m, short=True)
    enc_block, enc_res = _block(m, [("attn", f"Self-attention: {heads}"), _mlp(m, short=True)])
    encoder = Stack(
        "Encoder",
        (("io", "input tokens"), ("embed", f"Embedding {vocab:,} × {m.n_embd} {pos}")),
        enc_block,
        m.n_layer,
        (*_final_norm(m), ("io", "→ every decoder block")),
        enc_res,
        causal=False,
    )
    dec_block, dec_res = _block(
        m,
        [("attn", f"Causal self-attn: {heads}"), ("cross", f"Cross-attention: {heads}"), _mlp(m, short=True)],
    )
    decoder = Stack(
        "Decoder",
        (("io", "output so far (shifted right)"), ("embed", "The same embedding (shared)")),
        dec_block,
        m.decoder_layers,
        (*_final_norm(m), ("head", f"LM head {m.n_embd} → {vocab:,}{_tied(m)}"), ("io", "next-token probabilities")),
        dec_res,
        causal=True,
    )
    return encoder, decoder


def diagram(m: ModelConfig, vocab_size: int) -> Diagram:
    """The diagram of model `m` with a vocabulary of `vocab_size` tokens."""
    if m.arch == "encoder":
        return Diagram((_encoder(m, vocab_size),), False, m.norm_position)
    if m.arch == "encoder-decoder":
        return Diagram(_encoder_decoder(m, vocab_size), True, m.norm_position)
    return Diagram((_decoder(m, vocab_size),), False, m.norm_position)


def diagram_boxes(m: ModelConfig, vocab_size: int) -> list[Box]:
    """Every box of the diagram as (role, text), stack by stack, top to bottom."""
    return diagram(m, vocab_size).boxes()
