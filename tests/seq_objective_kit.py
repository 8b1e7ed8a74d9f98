"""What the span-corruption, denoising and permutation-LM tests share: a small learnable corpus read by a real
character tokenizer with the special tokens the objectives need, tiny run configs, and a short training loop
(the real loop is engine/train.py; this one only shows that an objective's loss can be learned)."""

from __future__ import annotations

import random
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from engine.config import ModelConfig, ObjectiveConfig, RunConfig, TrainConfig
from engine.model import build_model
from engine.objectives.registry import get_objective
from engine.objectives.text_source import TokenSource
from engine.tokenizer import make_spec, train_tokenizer

_SUBJECTS = ["the cat", "a dog", "my friend", "the old king", "a small bird", "the queen"]
_VERBS = ["sat on", "ran to", "looked at", "sang to", "walked past", "slept near"]
_PLACES = ["the mat", "the park", "a tree", "the castle", "the river", "a garden"]


def corpus(n_docs: int = 120, seed: int = 0) -> list[str]:
    """Documents of a few simple sentences each (a grammar small enough to learn in a few hundred steps)."""
    rng = random.Random(seed)
    docs = []
    for _ in range(n_docs):
        sentences = [
            f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_PLACES)}{rng.choice('.!?')}"
            for _ in range(rng.randint(2, 4))
        ]
        docs.append(" ".join(s[0].upper() + s[1:] for s in sentences))
    return docs


def char_source(docs: list[str] | None = None, sentinels: int = 32) -> tuple[TokenSource, Tokenizer]:
    """A TokenSource over the documents, each ended by eos, read by a char tokenizer with [MASK], [PAD], eos and
    the sentinels; and the tokenizer (its id_to_token is describe()'s decode)."""
    docs = docs if docs is not None else corpus()
    specials = {"eos": "<|endoftext|>", "mask": "[MASK]", "pad": "[PAD]"}
    spec = make_spec("char", 256, special_tokens=specials, sentinels=sentinels)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "corpus.txt"
        path.write_text("\n".join(docs), encoding="utf-8")
        tok = train_tokenizer("char", 256, [path], special_tokens=specials, sentinels=sentinels)
    eos = tok.token_to_id(specials["eos"])
    ids = [t for doc in docs for t in [*tok.encode(doc).ids, eos]]
    return TokenSource.from_tokenizer(tok, spec.to_dict(), np.array(ids, dtype=np.int64)), tok


def tiny_config(arch: str, objective: str, block_size: int = 32, **options) -> RunConfig:
    cfg = RunConfig()
    cfg.model = ModelConfig(arch=arch, n_layer=2, n_head=2, n_embd=32, block_size=block_size)
    cfg.objective = ObjectiveConfig(name=objective, **options)
    cfg.train = TrainConfig(batch_size=16, learning_rate=3e-3)
    return cfg


def make_model(cfg: RunConfig, source: TokenSource, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(cfg.model, source.vocab_size)


def val_loss(objective, model, source: TokenSource, n_batches: int = 4, seed: int = 123) -> float:
    """The mean loss over fixed batches (the same for every call with the same seed)."""
    g = torch.Generator().manual_seed(seed)
    model.eval()
    with torch.no_grad():
        losses = [float(objective.loss(model, objective.batch(source, 16, g, "cpu")).loss) for _ in range(n_batches)]
    model.train()
    return sum(losses) / len(losses)


def train_briefly(cfg: RunConfig, source: TokenSource, steps: int = 200) -> tuple[float, float]:
    """(validation loss before, after) `steps` AdamW steps of the run's objective on a fresh tiny model."""
    objective = get_objective(cfg)
    objective.check(source)
    model = make_model(cfg, source)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.learning_rate)
    g = torch.Generator().manual_seed(1)
    with one_thread():
        before = val_loss(objective, model, source)
        for _ in range(steps):
            out = objective.loss(model, objective.batch(source, cfg.train.batch_size, g, "cpu"))
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            opt.step()
        return before, val_loss(objective, model, source)


@contextmanager
def one_thread():
    """Torch on one thread meanwhile: models this small run fastest so, and the tests share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
