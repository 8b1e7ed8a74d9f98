"""Permutation language modelling (XLNet, Yang et al. 2019) on a decoder, with two-stream attention.

Each sequence of a batch gets a factorization order, a random permutation of its positions; rank[i] is where
position i comes in it. The last predict_fraction of the order is predicted (XLNet's partial prediction, K = 6),
each token from the tokens before it in the order, wherever they sit in the text. The tokens keep their
positions; only the attention masks follow the order.

Two streams run through the same blocks (the model's own weights; contract: GPT.embed, block(x, pos, attn_mask,
kv_x), GPT.head):
- the content stream h starts from the token embeddings and, at each layer, position i attends to the content of
  every position j with rank[j] <= rank[i] (itself included), as a causal decoder does along its order;
- the query stream g starts from wte[mask] + the position (it knows where it is, not what is there) and, at
  each layer, position i attends to the content of the positions with rank[j] < rank[i] only, strictly earlier
  in the order (queries from g, keys and values from the previous layer's h);
- the logits come from the query stream.

Why a predicted position never sees its own token: by induction over layers, h[j] depends only on the tokens
at positions with rank <= rank[j] (true of the embeddings; each layer mixes in only contents of such positions).
g[i] starts from no token at all and each layer adds attention over h[j] with rank[j] < rank[i], which depend
only on tokens of rank < rank[i], never on token i itself; the residual path carries g[i], which by the same
induction holds no token i either. The content stream, which does see token i, is only ever read by positions
later in the order. The first position of an order has nothing to attend to in the query stream; its row is
allowed its own content so the softmax stays finite, which is harmless because it is never predicted (at most
all but the first of an order are) and no other position reads the query stream.

For generation (next_token_logits) the order is the text's own: the content stream is causal, and the query
stream at the next position, one past the context, sees the whole context.
"""

from __future__ import annotations

import torch

from engine.objectives.base import IGNORE, Batch, LossOut, Objective
from engine.objectives.catalog import objective_info
from engine.objectives.seq2seq_view import token_span
from engine.objectives.losses import to_device, token_loss


def stream_masks(rank: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(content mask, query mask), each bool (B, T, T), True = the query position may see the key position."""
    query_rank, key_rank = rank[:, :, None], rank[:, None, :]
    content = key_rank <= query_rank
    query = key_rank < query_rank
    first = rank.argmin(1)  # the first of each order may see itself (see the module docstring)
    rows = torch.arange(rank.size(0), device=rank.device)
    query[rows, first, first] = True
    return content, query


def two_stream_logits(model, idx: torch.Tensor, rank: torch.Tensor, mask_id: int) -> torch.Tensor:
    """The query stream's logits (B, T, V) for token ids idx (B, T) read in the orders rank (B, T)."""
    content_mask, query_mask = stream_masks(rank)
    h, pos = model.embed(idx)
    g, _ = model.embed(torch.full_like(idx, mask_id))
    blocks = list(model.transformer.h)
    for layer, block in enumerate(blocks):
        g_next, _ = block(g, pos, attn_mask=query_mask, kv_x=h)
        if layer < len(blocks) - 1:  # the last layer's content is read by no one
            h, _ = block(h, pos, attn_mask=content_mask)
        g = g_next
    return model.head(g)


def n_predicted(length: int, predict_fraction: float) -> int:
    """Predicted positions per sequence: the share of the order, at least one, never the first of the order."""
    return max(1, min(length - 1, round(length * predict_fraction)))


def next_token_logits(model, ids, mask_id: int) -> torch.Tensor:
    """Logits (V,) of the token after `ids` (a list or 1-D tensor), reading left to right: the query stream at
    the position after the context (the last block_size - 1 tokens of it). Call it under torch.no_grad()."""
    device = model.transformer.wte.weight.device
    ctx = torch.as_tensor(ids, dtype=torch.long).reshape(-1)[-(model.cfg.block_size - 1) :].tolist()
    x = torch.tensor([[*ctx, mask_id]], dtype=torch.long, device=device)  # (1, T): the last content is unread
    rank = torch.arange(x.size(1), device=device)[None]  # the text's own order
    return two_stream_logits(model, x, rank, mask_id)[0, -1]


class PermutationLM(Objective):
    info = objective_info("permutation_lm")

    next_token_logits = staticmethod(next_token_logits)

    def batch(self, source, batch_size: int, generator: torch.Generator, device) -> Batch:
        T = self.cfg.model.block_size
        idx = source.windows(T, batch_size, generator)  # (B, T)
        orders = torch.stack([torch.randperm(T, generator=generator) for _ in range(batch_size)])  # (B, T)
        rank = torch.empty_like(orders)
        rank.scatter_(1, orders, torch.arange(T).expand(batch_size, T).contiguous())  # rank[order[k]] = k
        predicted = rank >= T - n_predicted(T, self.options.predict_fraction)
        targets = torch.where(predicted, idx, torch.full_like(idx, IGNORE))
        return Batch(
            # The masks follow from the orders; loss() builds them where the model runs.
            {"idx": to_device(idx, device)},
            to_device(targets, device),
            marks=[["kept"] * T for _ in range(batch_size)],
            extra={"rank": to_device(rank, device), "mask_id": source.specials["mask"]},
            n_tokens=idx.numel(),
        )

    def loss(self, model, batch: Batch, label_smoothing: float = 0.0) -> LossOut:
        logits = two_stream_logits(model, batch.inputs["idx"], batch.extra["rank"], batch.extra["mask_id"])
        return LossOut(*token_loss(logits, batch.targets, label_smoothing))

    def describe(self, batch: Batch, source, decode) -> list[dict]:
        """Every token with its place in the order (1 = first); the predicted ones carry loss."""
        idx, rank, targets = batch.inputs["idx"].cpu(), batch.extra["rank"].cpu(), batch.targets.cpu()
        rows = []
        for i in range(idx.size(0)):
            spans = [
                token_span(decode(t), m, y != IGNORE, r + 1)
                for t, m, y, r in zip(idx[i].tolist(), batch.marks[i], targets[i].tolist(), rank[i].tolist())
            ]
            rows.append({"input": spans, "target": None, "label": None})
        return rows
