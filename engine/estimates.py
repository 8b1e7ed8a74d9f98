"""Estimates of a model before it exists: parameters (exactly engine/model.py's count; a test keeps them equal for
every architecture and variant), training FLOPs per token and training memory. Standard library only (a shared
module), so the Model panel shows them without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.config import ModelConfig


def _layer_parts(m: ModelConfig) -> tuple[int, int, int]:
    """Parameters of one norm, one attention (q, k, v and the output projection) and one MLP."""
    E, H = m.n_embd, m.mlp_hidden
    b = 1 if m.bias else 0
    norm = E * (1 + b) if m.norm == "layernorm" else E
    attn = 3 * E * E + 3 * E * b + E * E + E * b
    if m.mlp == "swiglu":
        mlp = 2 * E * H + 2 * H * b + H * E + E * b
    else:
        mlp = 2 * E * H + H * b + E * b
    return norm, attn, mlp


def _stack_params(m: ModelConfig) -> tuple[int, int]:
    """(encoder or decoder-only stack, decoder stack of an encoder-decoder): blocks plus the stack's one norm
    outside them (the final norm with pre-norm, the embedding norm with post-norm)."""
    norm, attn, mlp = _layer_parts(m)
    block = 2 * norm + attn + mlp
    cross_block = block + norm + attn  # cross-attention: its norm, q, k, v and output projection
    return m.n_layer * block + norm, m.decoder_layers * cross_block + norm


def _head_params(m: ModelConfig) -> int:
    """The encoder's heads: the masked-LM transform (dense + norm), the pooler, and the pair head (segments >= 2)."""
    E, b = m.n_embd, 1 if m.bias else 0
    norm, _, _ = _layer_parts(m)
    total = (E * E + E * b + norm) + (E * E + E * b)
    if m.n_segments >= 2:
        total += 2 * E + 2 * b
    return total


def param_count(m: ModelConfig, vocab_size: int) -> int:
    """Exact number of trainable parameters of engine.model.build_model(m, vocab_size), any architecture (a test
    keeps the two in step): one token embedding shared by every stack and, when tied, the output."""
    E, V = m.n_embd, vocab_size
    stack, dec_stack = _stack_params(m)
    total = V * E + stack
    if m.arch == "encoder":
        total += m.n_segments * E + _head_params(m)
    elif m.arch == "encoder-decoder":
        total += dec_stack
    if m.pos_encoding == "learned":
        total += m.block_size * E
    if not m.tie_embeddings:
        total += V * E
    if m.n_classes:
        total += m.n_classes * (E + 1)  # the classification head (engine/model_classifier.py), always with a bias
    return total


def lora_param_count(m: ModelConfig, rank: int, targets: str) -> int:
    """Exact number of LoRA parameters engine/finetune.py adds for train.lora_targets: r x (in + out) per adapted
    matrix; a test keeps it equal to the adapted model's trainable count."""
    E, H = m.n_embd, m.mlp_hidden
    self_attn = 4 * E + 2 * E  # the fused q, k, v (E -> 3E) and the output projection
    cross_attn = 2 * E + 3 * E + 2 * E  # q, the fused k, v (E -> 2E), the output projection
    mlp = (3 if m.mlp == "swiglu" else 2) * (E + H)
    blocks = m.n_layer + (m.decoder_layers if m.arch == "encoder-decoder" else 0)
    crosses = m.decoder_layers if m.arch == "encoder-decoder" else 0
    per = 0
    if targets in ("attention", "all"):
        per += blocks * self_attn + crosses * cross_attn
    if targets in ("mlp", "all"):
        per += blocks * mlp
    return rank * per


def flops_per_token(m: ModelConfig, vocab_size: int) -> int:
    """Training FLOPs per token (forward + backward): 6 per weight use plus attention scores (PaLM appendix B).

    Per position of the context: an encoder-decoder reads a source and a target token at each (both stacks
    block_size long), so its figure is the encoder's per source token plus the decoder's per target token, and
    batch_size x block_size positions make a step as for the other architectures. The encoder's pooler and pair
    head, which run once per sequence, are counted as if per token (they are tiny)."""
    E, L, T = m.n_embd, m.n_layer, m.block_size
    matmul_params = param_count(m, vocab_size) - vocab_size * E * (1 if m.tie_embeddings else 2)
    matmul_params -= m.block_size * E if m.pos_encoding == "learned" else 0
    matmul_params -= m.n_segments * E if m.arch == "encoder" else 0  # a lookup, not a matmul
    matmul_params += vocab_size * E  # the output projection is a matmul even when tied
    attention = 12 * L * E * T
    if m.arch == "encoder-decoder":
        attention += 2 * 12 * m.decoder_layers * E * T  # the decoder's self-attention and cross-attention scores
    return 6 * matmul_params + attention


def memory_estimate(m: ModelConfig, vocab_size: int, batch_size: int, bytes_per_act: int = 4) -> dict[str, int]:
    """Rough training memory in bytes: weights, gradients, AdamW moments, and activations kept for backward."""
    n = param_count(m, vocab_size)
    B, T, E, L = batch_size, m.block_size, m.n_embd, m.n_layer
    # Per layer, about 34*B*T*E activation values plus the attention matrices (Korthikanti et al. 2022),
    # halved from their 16-bit byte counts to values; fused attention does not keep the T*T scores. Each decoder
    # layer of an encoder-decoder keeps as much plus about 7 values per token for its cross-attention.
    act_values = L * (17 * B * T * E) + B * T * vocab_size * 2
    if m.arch == "encoder-decoder":
        act_values += m.decoder_layers * (24 * B * T * E)
    act = act_values * bytes_per_act
    weights = n * 4
    return {
        "weights": weights,
        "gradients": n * 4,
        "optimizer": n * 8,
        "activations": act,
        "total": weights + n * 12 + act,
    }
