"""Instruction tuning (objective.name = "sft"): a decoder learns to answer prompts from pairs of a prompt and its
response, the prompt in the dataset's text column and the response in the column kept as its label at import.

Each pair becomes one sequence: the template with {prompt} replaced by the prompt (objective.template), then the
response, then the token that ends a document (eos, else sep) where the vocabulary has one, so generation learns
where an answer stops. The loss is on the response and that end token only: a target that is part of the
templated prompt is IGNORE. A sequence longer than the context keeps all of the response it can and the end of the
prompt (where the question meets the answer). The Playground and `generate` wrap what is typed in the same
template for such a run (engine/run_generation.py).

On an encoder-decoder the same pairs train text to text: the encoder reads the templated prompt (its last
context-length tokens, where the question is), the decoder writes the response and the end token behind
decoder_start_id, every target learned (beam search in the Playground's Text to text reads it back).
"""

from __future__ import annotations

import numpy as np
import torch

from engine.config import ConfigError
from engine.objectives.base import IGNORE, Batch, LossOut, Objective, decoder_start_id
from engine.objectives.denoising import pad_rows
from engine.objectives.seq2seq_view import describe_seq2seq
from engine.objectives.catalog import objective_info
from engine.objectives.losses import to_device, token_loss


def fill_prompt(template: str, prompt: str) -> str:
    return template.replace("{prompt}", prompt)


def require_pairs(ws, dataset_id) -> None:
    """ConfigError when the dataset has no responses (it was imported without a second column)."""
    ds = ws.dataset(dataset_id)
    if not ds.get("has_labels") or not ws.labelled_documents(ds["id"], "train")[1]:
        raise ConfigError(
            f"Instruction tuning learns from prompt and response pairs, and {ds['name']!r} has none: import a CSV, "
            "TSV, JSONL or Parquet file with the prompt as its text column and the response as its label column",
            "data.dataset",
            also=("objective.name",),
        )


def pair_sequence(prompt_ids: list[int], response_ids: list[int], length: int) -> tuple[list[int], int]:
    """(the tokens of one example, at most `length`, and how many of them are the prompt's)."""
    response = response_ids[: length - 1]  # at least one prompt token stays, to predict the first answer token from
    prompt = prompt_ids[-(length - len(response)) :] if prompt_ids else []
    return prompt + response, len(prompt)


class InstructionTuning(Objective):
    info = objective_info("sft")

    def __init__(self, cfg):
        super().__init__(cfg)
        self.pairs: dict[str, list[tuple[list[int], list[int]]]] = {}
        self.pad_id = 0

    def attach(self, ws, device) -> None:
        tokenizer = self.cfg.tokenizer.tokenizer
        self.read_dataset(ws, self.cfg.data.dataset, ws.load_tokenizer(tokenizer), ws.tokenizer(tokenizer)["spec"])

    def read_dataset(self, ws, dataset_id, tok, spec) -> None:
        from engine.tokenizer import role_ids, separator_id

        require_pairs(ws, dataset_id)
        end = separator_id(tok, spec)
        specials = role_ids(tok, spec)
        self.pad_id = specials.get("pad", end if end is not None else 0)
        self.start_id = decoder_start_id(specials)
        template = self.options.template
        for split in ("train", "val"):
            prompts, responses = ws.labelled_documents(dataset_id, split)
            p_ids = tok.encode_batch([fill_prompt(template, p) for p in prompts], add_special_tokens=False)
            r_ids = tok.encode_batch([str(r) for r in responses], add_special_tokens=False)
            tail = [end] if end is not None else []
            self.pairs[split] = [(p.ids, r.ids + tail) for p, r in zip(p_ids, r_ids) if r.ids]
        if not self.pairs["val"]:
            self.pairs["val"] = self.pairs["train"]

    def batch(self, source, batch_size: int, generator: torch.Generator, device) -> Batch:
        if not self.pairs:
            raise RuntimeError("the pairs are not read: call attach(ws, device) or read_dataset first")
        pairs = self.pairs["val" if getattr(source, "split", "train") == "val" else "train"]
        rows = torch.randint(len(pairs), (batch_size,), generator=generator).tolist()
        if self.cfg.model.arch == "encoder-decoder":
            return self._text_to_text([pairs[i] for i in rows], device)
        seqs = [pair_sequence(*pairs[i], self.cfg.model.block_size + 1) for i in rows]
        T = max(len(s) for s, _ in seqs) - 1
        idx = torch.full((batch_size, T), self.pad_id, dtype=torch.int64)
        targets = torch.full((batch_size, T), IGNORE, dtype=torch.int64)
        marks = []
        for b, (seq, n_prompt) in enumerate(seqs):
            ids = torch.tensor(seq, dtype=torch.int64)
            n = len(seq) - 1
            idx[b, :n] = ids[:-1]
            answer = np.arange(n) + 1 >= n_prompt  # the target at i is token i + 1: learned where it is the response
            targets[b, :n] = torch.where(torch.from_numpy(answer), ids[1:], torch.tensor(IGNORE))
            marks.append(["prompt" if i < n_prompt else "kept" for i in range(n)] + ["pad"] * (T - n))
        real = torch.zeros(idx.shape, dtype=torch.bool)
        for b, (seq, _) in enumerate(seqs):
            real[b, : len(seq) - 1] = True
        return Batch(
            inputs={"idx": to_device(idx, device), "key_padding": to_device(real, device)},
            targets=to_device(targets, device),
            marks=marks,
            extra={"layout": "next"},
            n_tokens=int(real.sum()),
        )

    def _text_to_text(self, pairs: list[tuple[list[int], list[int]]], device) -> Batch:
        """The encoder reads the templated prompt (its last context-length tokens), the decoder writes the
        response and its end token behind the start token."""
        T = self.cfg.model.block_size
        src, real = pad_rows([p[-T:] or [self.pad_id] for p, _ in pairs], self.pad_id)
        responses = [r[:T] for _, r in pairs]
        tgt_in, _ = pad_rows([[self.start_id, *r[:-1]] for r in responses], self.pad_id)
        targets, answer = pad_rows(responses, IGNORE)
        return Batch(
            inputs={
                "idx": to_device(src, device),
                "tgt": to_device(tgt_in, device),
                "src_padding": to_device(real, device),
            },
            targets=to_device(targets, device),
            marks=[["prompt" if k else "pad" for k in row] for row in real.tolist()],
            extra={"target_marks": [["kept"] * len(r) for r in responses]},
            n_tokens=int(real.sum()) + int(answer.sum()),
        )

    def describe(self, batch: Batch, source, decode) -> list[dict]:
        if self.cfg.model.arch == "encoder-decoder":
            return describe_seq2seq(batch, decode)
        return super().describe(batch, source, decode)

    def loss(self, model, batch: Batch, label_smoothing: float = 0.0) -> LossOut:
        if self.cfg.model.arch == "encoder-decoder":
            x = batch.inputs
            logits = model(x["idx"], x["tgt"], src_padding=x["src_padding"])[0]
            return LossOut(*token_loss(logits, batch.targets, label_smoothing))
        logits = model(**batch.inputs)[0]
        loss, stats = token_loss(logits, batch.targets, label_smoothing)
        return LossOut(loss, stats)
