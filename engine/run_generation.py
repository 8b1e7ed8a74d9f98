"""Text from a run: the model of one of its checkpoints, a prompt made tokens, and tokens made text again.

`load_run` builds the model a checkpoint describes, of any architecture (engine.model.build_model), with what
the playground needs to know about the run (its objective, the tokenizer's special tokens and sentinels as a
TokenSource), and keeps the last few in a cache (the playground compares two checkpoints and generates while a
run trains; the attention requests use it too); `load_model_for_run` is its (model, tokenizer, meta) part.
`generate_text` runs the algorithms of engine/generate.py on it (an encoder-decoder reads the prompt with its
encoder and writes its output from the decoder start token; a permutation LM predicts with its query stream)
and hands the text out as it becomes complete:
a byte-level token can end inside a character, so `_StreamDecoder` holds such a piece back until the character
is whole.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from engine.checkpoint import checkpoint_name, find_checkpoint, load_checkpoint, read_checkpoint_meta
from engine.config import RunConfig
from engine.device import pick_device
from engine.generate import GenerationError, stream_steps
from engine.infer_stepper import ENCODER_REFUSAL
from engine.model import build_model
from engine.finetune import build_run_model
from engine.lora import merge_all

_cache_lock = threading.Lock()
_model_cache: dict = {}  # {(checkpoint path, sha256, device): LoadedRun}, the last few used
_MODEL_CACHE_SIZE = 3  # the playground compares two checkpoints; the third is the one training just wrote


@dataclass(frozen=True)
class LoadedRun:
    """A run's checkpoint made ready to use: the model in eval mode, its tokenizer, the checkpoint's meta (with
    "checkpoint", its name), the run's config and a TokenSource that knows the vocabulary's special tokens
    (no token ids of its own)."""

    model: Any
    tok: Any
    meta: dict
    cfg: RunConfig
    source: Any  # engine.objectives.text_source.TokenSource

    @property
    def arch(self) -> str:
        return self.cfg.model.arch

    @property
    def objective(self) -> str:
        return self.cfg.objective.name

    @property
    def specials(self) -> dict[str, int]:
        return self.source.specials


def load_run(ws, run_ref, device="cpu", checkpoint: str | None = None) -> LoadedRun:
    """Run `run_ref`'s checkpoint called `checkpoint` (see list_checkpoints; None: the newest), loaded."""
    from engine.objectives.text_source import TokenSource
    from engine.tokenizer import load_tokenizer

    run = ws.run(run_ref)
    ck = find_checkpoint(ws, run["id"], checkpoint)
    device = torch.device(pick_device(device) if isinstance(device, str) else device)
    key = (str(ck["path"]), ck.get("sha256"), str(device))
    with _cache_lock:
        if key in _model_cache:
            _model_cache[key] = _model_cache.pop(key)  # most recently used last
            return _model_cache[key]
    meta = read_checkpoint_meta(ck["path"]).get("meta") or {}
    cfg = RunConfig.from_dict(meta["config"])
    vocab_size = int(meta["vocab_size"])
    with _cache_lock:
        # Building a model draws its initial weights from the global RNG; a training paused in another thread
        # must continue with the random numbers it would have had.
        state = torch.get_rng_state()
        try:
            model = build_run_model(build_model, cfg, vocab_size)
        finally:
            torch.set_rng_state(state)
    load_checkpoint(ck["path"], model, map_location="cpu")
    merge_all(model)  # a LoRA run generates with its updates folded in: as fast as the plain model
    model.to(device).eval()
    tokenizer_id = meta.get("tokenizer_id", run["tokenizer_id"])
    tok = load_tokenizer(ws.tokenizer_path(tokenizer_id))
    source = TokenSource.from_tokenizer(
        tok, ws.tokenizer(tokenizer_id).get("spec"), np.zeros(0, dtype=np.int64), vocab_size
    )
    meta = {**meta, "checkpoint": checkpoint_name(ck["path"])}
    loaded = LoadedRun(model, tok, meta, cfg, source)
    with _cache_lock:
        _model_cache[key] = loaded
        while len(_model_cache) > _MODEL_CACHE_SIZE:
            _model_cache.pop(next(iter(_model_cache)))
    return loaded


def load_model_for_run(ws, run_ref, device="cpu", checkpoint: str | None = None):
    """(model in eval mode, tokenizer, checkpoint meta) of load_run."""
    loaded = load_run(ws, run_ref, device, checkpoint)
    return loaded.model, loaded.tok, loaded.meta


def generation_inputs(loaded: LoadedRun) -> dict:
    """The keyword arguments engine.generate needs for the run's kind of model: the decoder start token of an
    encoder-decoder, the query-stream prediction of a permutation LM, the prompt read as a prefix LM's prefix
    (engine/infer_stepper.py)."""
    from engine.objectives.base import decoder_start_id

    if loaded.arch == "encoder-decoder":
        return {"start_id": decoder_start_id(loaded.specials)}
    if loaded.arch == "decoder" and loaded.objective == "permutation_lm":
        from engine.objectives.permutation_lm import next_token_logits

        mask_id = loaded.specials.get("mask")
        if mask_id is None:
            raise GenerationError("this permutation-LM run's vocabulary has no [MASK] token to predict from")
        model = loaded.model
        return {"next_token_logits": lambda ids: next_token_logits(model, ids, mask_id)}
    if loaded.arch == "decoder" and loaded.objective == "prefix_lm":
        return {"bidirectional_prompt": True}
    return {}


def _start_ids(tok, prompt: str) -> list[int]:
    if prompt:
        ids = tok.encode(prompt, add_special_tokens=False).ids
        if ids:
            return ids
    ids = tok.encode("\n", add_special_tokens=False).ids
    if len(ids) == 1 and tok.decode(ids) == "\n":
        return ids
    return [0]


class _StreamDecoder:
    """Turns token ids into text pieces that never split a character.

    Byte-level tokens can end in the middle of a UTF-8 character; decoding then gives U+FFFD, so a piece is
    held back until the character is complete. Decoding restarts after each line to keep the work per token small.
    """

    def __init__(self, tok):
        self.tok = tok
        self.ids: list[int] = []
        self.done = 0  # characters of decode(self.ids) already handed out

    def push(self, token_id: int) -> str:
        self.ids.append(token_id)
        text = self.tok.decode(self.ids, skip_special_tokens=False)
        if text.endswith("\ufffd"):
            return ""
        piece = text[self.done :]
        self.done = len(text)
        if text.endswith("\n") or len(self.ids) >= 256:
            self.ids, self.done = [], 0
        return piece

    def flush(self) -> str:
        text = self.tok.decode(self.ids, skip_special_tokens=False) if self.ids else ""
        piece = text[self.done :]
        self.ids, self.done = [], 0
        return piece


def _token_texts(tok, ids: list[int]) -> list[str]:
    """Each token's share of the decoded text (empty for a token that ends inside a character)."""
    decoder = _StreamDecoder(tok)
    texts = [decoder.push(i) for i in ids]
    if texts:
        texts[-1] += decoder.flush()
    return texts


def _readable_token(tok, token_id: int) -> str:
    from engine.tokenizer import display_token

    try:
        return display_token(tok, token_id)
    except Exception:  # an id the tokenizer lacks (a model with a larger vocabulary): show the number
        return f"<{token_id}>"


def generate_text(
    ws,
    run_ref,
    prompt: str,
    *,
    max_new_tokens: int,
    mode: str = "sample",
    temperature: float = 0.8,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    beam_width: int = 4,
    length_penalty: float = 1.0,
    details: bool = False,
    checkpoint: str | None = None,
    on_token: Callable[[int, str], None] | None = None,
    on_step: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    device="auto",
) -> dict:
    """Continue `prompt` with a checkpoint of the run (`checkpoint` a name from list_checkpoints; None: the
    newest), in mode "sample", "greedy" or "beam" (engine/generate.py; beam search stops a beam at the
    end-of-text token and hands its tokens over when the search is done). An encoder-decoder run reads the
    prompt with its encoder and the text is its decoder's output (at most Context length tokens); an encoder run
    is refused with a GenerationError (it fills in blanks: Fill mask).

    The text ends early ("ended" True) when the model writes the token that ends a document in its training
    data (the tokenizer's eos or sep token; engine.tokenizer.separator_id); that token is not part of the text.

    Returns {"text" (the continuation only), "n_tokens", "tokens_per_sec", "stopped", "ended", "prompt_tokens"
    ([{"id", "text"}] of the prompt the model saw: its last block_size tokens, or the newline it starts from
    when empty), "token_ids", "checkpoint", "step", "unknown_chars" (the prompt's characters that the
    vocabulary lacks, read as [UNK], each once)}.
    on_token(id, piece) is called as text becomes complete (a character split over byte tokens arrives with its
    last token). on_step(record) is called once per token, in order: {"id", "text"} with, when `details`,
    "prob", "entropy" (nats, temperature 1) and "top" ([[readable token, prob], ...] most likely first); the
    texts of all records join to the returned text, a token ending inside a character having text "" (such a
    record waits for the next token, so it can take the rest of the text should the generation end there).
    """
    loaded = load_run(ws, run_ref, device, checkpoint)
    model, tok, meta = loaded.model, loaded.tok, loaded.meta
    if loaded.arch == "encoder":
        raise GenerationError(ENCODER_REFUSAL)
    ids = _start_ids(tok, prompt := _as_trained(loaded, prompt))
    seen = ids[-getattr(model, "context_size", model.cfg.block_size) :]
    prompt_tokens = [{"id": int(i), "text": t} for i, t in zip(seen, _token_texts(tok, seen))]
    eos_id, unknown = _vocabulary_facts(ws, run_ref, tok, meta, prompt)
    steps = stream_steps(
        model,
        ids,
        max_new_tokens=max_new_tokens,
        mode=mode,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seed=seed,
        beam_width=beam_width,
        length_penalty=length_penalty,
        eos_id=eos_id,
        details=details,
        should_stop=should_stop,
        **generation_inputs(loaded),
    )
    emit = _emitter(on_token, on_step)
    t0 = time.perf_counter()
    text, token_ids, ended = _stream_text(tok, steps, eos_id, emit)
    dt = time.perf_counter() - t0
    n = len(token_ids)
    return {
        "text": text,
        "n_tokens": n,
        "tokens_per_sec": n / dt if dt > 0 else 0.0,
        "stopped": not ended and n < max_new_tokens and should_stop is not None and bool(should_stop()),
        "ended": ended,
        "prompt_tokens": prompt_tokens,
        "token_ids": token_ids,
        "checkpoint": meta.get("checkpoint"),
        "step": meta.get("step"),
        "unknown_chars": unknown,
    }


def _as_trained(loaded: LoadedRun, prompt: str) -> str:
    """The prompt as the run learned to read it: an instruction-tuned run's in its template."""
    if loaded.objective != "sft":
        return prompt
    from engine.objectives.sft import fill_prompt

    return fill_prompt(loaded.cfg.objective.template, prompt)


def _vocabulary_facts(ws, run_ref, tok, meta: dict, prompt: str) -> tuple[int | None, list[str]]:
    """(the token that ends each document in the training data, or None; the prompt's characters that the
    vocabulary lacks). When the model writes that token, the text is finished."""
    from engine.tokenizer import separator_id, unknown_characters, unknown_id

    tok_row = ws.tokenizer(meta.get("tokenizer_id", ws.run(run_ref)["tokenizer_id"]))
    eos_id = separator_id(tok, tok_row.get("spec"))
    return eos_id, unknown_characters(tok, prompt, unknown_id(tok, tok_row.get("spec")))


def _emitter(
    on_token: Callable[[int, str], None] | None, on_step: Callable[[dict], None] | None
) -> Callable[[dict], None]:
    """emit(record) for _stream_text: the whole record to on_step, its text (when it has some) to on_token."""

    def emit(record: dict) -> None:
        if on_step is not None:
            on_step(record)
        if on_token is not None and record["text"]:
            on_token(record["id"], record["text"])

    return emit


def _stream_text(tok, steps, eos_id: int | None, emit: Callable[[dict], None]) -> tuple[str, list[int], bool]:
    """Hand each generated Step to emit() as a record {"id", "text"} (+ details) once its text is complete;
    returns (the text, the token ids, whether the model ended it with eos_id)."""
    decoder = _StreamDecoder(tok)
    pieces: list[str] = []
    token_ids: list[int] = []
    held: dict | None = None  # the record of a token whose text is not complete yet
    ended = False
    for step in steps:
        if eos_id is not None and step.token == eos_id:
            ended = True
            break
        token_ids.append(step.token)
        piece = decoder.push(step.token)
        pieces.append(piece)
        record = {"id": step.token, "text": piece}
        if step.prob is not None:
            record.update(prob=step.prob, entropy=step.entropy, top=[[_readable_token(tok, i), p] for i, p in step.top])
        if held is not None:
            emit(held)
            held = None
        if piece:
            emit(record)
        else:
            held = record
    tail = decoder.flush()
    pieces.append(tail)
    if held is not None:
        held["text"] += tail
        emit(held)
    return "".join(pieces), token_ids, ended
