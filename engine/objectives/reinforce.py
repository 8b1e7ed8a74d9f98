"""REINFORCE (Williams 1992) on a trained decoder: it writes, a reward scores what it wrote, the better writing
becomes likelier, and a KL penalty keeps it near where it started (Ziegler et al. 2019).

A batch is batch_size prompts (objective.prompts drawn with replacement, else prompt_length tokens of the dataset
starting at a word) and a seed. The loss samples samples_per_prompt continuations of each prompt from the policy (the
model in eval mode, with its KV cache, from a generator seeded by the batch, so a resumed run samples what it
would have), cut after the end-of-text token where the vocabulary has one, scores their text with the reward
(engine/rewards.py) and minimises

    -mean_i[(r_i - b_i) * mean_t log pi(a_it)] + kl_coef * mean_t KL(pi || pi_ref)

where b_i is the baseline: the mean reward of the prompt's other samples ("mean", which keeps the estimate
unbiased), an exponential moving average of earlier batches' mean rewards ("moving_average", part of the
checkpoint), or 0. The KL is exact over the vocabulary at each sampled position, against the frozen starting
run (train.init_from) loaded beside the policy. The curves show -mean reward + kl_coef * KL, the quantity the
training lowers; the metrics are the mean reward, the KL to the start and the policy's entropy (nats per token).
An evaluation samples the same prompts with the same seeds each time, so its samples and rewards show learning
only; its last batch's first samples are kept with their rewards ("val_samples").
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from engine.config import ConfigError
from engine.objectives.base import IGNORE, Batch, LossOut, Objective
from engine.objectives.catalog import objective_info
from engine.objectives.losses import to_device

_SLACK = 16  # tokens a dataset prompt may start late by, to start at a word
SHOWN_SAMPLES = 8  # samples an evaluation keeps for the window: the first prompts' continuations side by side
_EMA_DECAY = 0.9


class Reinforce(Objective):
    info = objective_info("reinforce")

    def __init__(self, cfg):
        super().__init__(cfg)
        from engine.rewards import parse_reward

        self.reward = parse_reward(self.options.reward)
        self.reference = None
        self.tok = None
        self.eos_id: int | None = None
        self.prompt_ids: list[list[int]] = []
        self.moving: float | None = None  # the moving-average baseline
        self.blank: np.ndarray | None = None
        self.latest: list[dict] = []

    # --------------------------------------------------------------------------------------------- set-up
    def attach(self, ws, device) -> None:
        """The vocabulary and typed prompts, the frozen reference (the run it starts from) and the reward's
        classifiers, on the training device."""
        from engine.checkpoint import CheckpointError
        from engine.run_generation import load_run
        from engine.store.errors import WorkspaceError

        tokenizer = self.cfg.tokenizer.tokenizer
        self.read_dataset(ws, self.cfg.data.dataset, ws.load_tokenizer(tokenizer), ws.tokenizer(tokenizer)["spec"])
        start = self.cfg.train.init_from
        try:
            self.reference = load_run(ws, start.run, device, start.checkpoint).model
        except (WorkspaceError, CheckpointError) as e:
            raise ConfigError(f"Start from run (REINFORCE's reference): {e}", "train.init_from") from None
        for p in self.reference.parameters():
            p.requires_grad_(False)
        from engine.reward_model import bind_classifiers

        bind_classifiers(self.reward, ws, device)

    def read_dataset(self, ws, dataset_id, tok, spec) -> None:
        from engine.tokenizer import role_ids

        self.tok = tok
        self.eos_id = role_ids(tok, spec).get("eos")
        # Tokens that are only white space (a char vocabulary's space and line break): a prompt starts after them.
        self.blank = np.array([not tok.decode([i]).strip() for i in range(tok.get_vocab_size())], dtype=bool)
        room = self.cfg.model.block_size - self.options.max_new_tokens
        self.prompt_ids = []
        for text in self.options.prompts:
            ids = tok.encode(text, add_special_tokens=False).ids[-room:]
            if not ids:
                raise ConfigError(f"the prompt {text!r} reads as no tokens at all", "objective.prompts")
            self.prompt_ids.append(ids)

    def _word_start(self, source, row) -> int:
        """Where a dataset prompt starts in its window: the first word that begins in the first _SLACK tokens,
        so a prompt reads as text does (0 when none does)."""
        begins = source.word_begins(row)
        blank = self.blank[row] if self.blank is not None else np.zeros(len(row), dtype=bool)
        for i in range(1, _SLACK + 1):
            if (begins[i] or blank[i - 1]) and not blank[i]:
                return i
        return 0

    def state_dict(self) -> dict:
        return {"moving_baseline": self.moving}

    def load_state_dict(self, state: dict) -> None:
        self.moving = state.get("moving_baseline")

    def eval_extras(self, split: str) -> dict:
        return {"samples": list(self.latest)} if split == "val" and self.latest else {}

    # --------------------------------------------------------------------------------------------- batches
    def batch(self, source, batch_size: int, generator: torch.Generator, device) -> Batch:
        if self.prompt_ids:
            picks = torch.randint(len(self.prompt_ids), (batch_size,), generator=generator).tolist()
            prompts = [self.prompt_ids[i] for i in picks]
        else:
            length = self.options.prompt_length
            rows = source.windows(length + _SLACK, batch_size, generator).numpy()
            prompts = [row[i : i + length].tolist() for row in rows for i in [self._word_start(source, row)]]
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        width = max(len(p) for p in prompts)
        idx = torch.zeros((batch_size, width), dtype=torch.int64)
        for i, p in enumerate(prompts):
            idx[i, : len(p)] = torch.tensor(p)
        k, n = self.options.samples_per_prompt, self.options.max_new_tokens
        return Batch(
            inputs={"idx": to_device(idx, device)},
            targets=torch.full_like(idx, IGNORE),
            marks=[["prompt"] * len(p) + ["pad"] * (width - len(p)) for p in prompts],
            extra={"prompts": prompts, "seed": seed, "layout": "prompt"},
            n_tokens=sum(k * (len(p) + n) for p in prompts),
        )

    # ------------------------------------------------------------------------------------------------ loss
    def loss(self, model, batch: Batch, label_smoothing: float = 0.0) -> LossOut:
        if self.reference is None or self.tok is None:
            raise RuntimeError("the reference is not loaded: call attach(ws, device) first")
        device = batch.inputs["idx"].device
        gen = torch.Generator(device=device).manual_seed(batch.extra["seed"])
        parts = [self._group(model, rows, batch.extra["prompts"], gen) for rows in _by_length(batch.extra["prompts"])]
        rewards = torch.cat([p["rewards"] for p in parts])
        log_probs = torch.cat([p["log_prob"] for p in parts])
        advantage = rewards - self._baseline(rewards, training=model.training)
        tokens = sum(p["tokens"] for p in parts)
        kl, entropy = sum(p["kl"] for p in parts), sum(p["entropy"] for p in parts)
        mean_kl = kl / tokens.clamp(min=1)
        loss = -(advantage * log_probs).mean() + self.options.kl_coef * mean_kl
        shown = -rewards.mean() + self.options.kl_coef * mean_kl.detach()
        n = torch.tensor(float(rewards.numel()), device=device)
        self.latest = [s for p in parts for s in p["samples"]][:SHOWN_SAMPLES]
        stats = {"reward": (rewards.sum(), n), "ref_kl": (kl.detach(), tokens), "entropy": (entropy, tokens)}
        return LossOut(loss, stats, shown=shown)

    def _baseline(self, rewards: torch.Tensor, training: bool) -> torch.Tensor:
        """What each sample's reward is compared with (rows come k per prompt, in order)."""
        how, k = self.options.baseline, self.options.samples_per_prompt
        if how == "none":
            return torch.zeros_like(rewards)
        if how == "mean":
            per_prompt = rewards.view(-1, k)
            others = (per_prompt.sum(1, keepdim=True) - per_prompt) / (k - 1)
            return others.reshape(-1)
        mean = float(rewards.mean())
        base = mean if self.moving is None else self.moving
        if training:  # evaluations read the baseline, never move it
            self.moving = mean if self.moving is None else _EMA_DECAY * self.moving + (1 - _EMA_DECAY) * mean
        return torch.full_like(rewards, base)

    def _group(self, model, rows: list[int], prompts: list[list[int]], gen: torch.Generator) -> dict:
        """Sample, score and read back the continuations of prompts of one length (one batch on the model)."""
        k, n, temp = self.options.samples_per_prompt, self.options.max_new_tokens, self.options.sample_temperature
        device = model.lm_head.weight.device
        prompt = torch.tensor([prompts[r] for r in rows], device=device).repeat_interleave(k, 0)
        sampled = sample_continuations(model, prompt, n, temp, gen)
        valid = _until_end(sampled, self.eos_id)
        texts = [self._text(row, keep) for row, keep in zip(sampled.tolist(), valid.tolist())]
        rewards = torch.tensor(self.reward.score(texts), device=device, dtype=torch.float32)
        full = torch.cat([prompt, sampled], 1)
        P = prompt.size(1)
        logits = model(full)[0][:, P - 1 : -1].float()
        with torch.no_grad():
            ref = F.log_softmax(self.reference(full)[0][:, P - 1 : -1].float(), -1)
        chosen = F.log_softmax(logits / temp, -1).gather(-1, sampled.unsqueeze(-1)).squeeze(-1)
        mask = valid.float()
        lengths = mask.sum(1).clamp(min=1)
        log_p = F.log_softmax(logits, -1)
        p = log_p.exp()
        kl_t = (p * (log_p - ref)).sum(-1)
        entropy_t = -(p * log_p).sum(-1).detach()
        prompt_texts = [text for r in rows for text in [self.tok.decode(prompts[r])] * k]  # each prompt decoded once
        return {
            "rewards": rewards,
            "log_prob": (chosen * mask).sum(1) / lengths,
            "kl": (kl_t * mask).sum(),
            "entropy": (entropy_t * mask).sum(),
            "tokens": mask.sum(),
            "samples": [
                {"prompt": pt, "text": t, "reward": float(r)} for pt, t, r in zip(prompt_texts, texts, rewards.tolist())
            ],
        }

    def _text(self, ids: list[int], keep: list[bool]) -> str:
        kept = [i for i, k in zip(ids, keep) if k and i != self.eos_id]
        return self.tok.decode(kept)


@torch.no_grad()
def sample_continuations(model, prompt: torch.Tensor, n_new: int, temperature: float, gen: torch.Generator):
    """(R, n_new) tokens sampled after each row of `prompt` (R, P) at `temperature`, with the KV cache; the model
    reads in eval mode (no dropout) and is put back as it was."""
    was_training = model.training
    model.eval()
    try:
        cache = model.new_kv_cache(prompt.size(0), prompt.device)
        logits = model(prompt, kv_cache=cache)[0][:, -1]
        out = []
        for i in range(n_new):
            probs = torch.softmax(logits.float() / temperature, -1)
            token = torch.multinomial(probs, 1, generator=gen)
            out.append(token)
            if i + 1 < n_new:
                logits = model(token, kv_cache=cache)[0][:, -1]
        return torch.cat(out, 1)
    finally:
        model.train(was_training)


def _until_end(sampled: torch.Tensor, eos_id: int | None) -> torch.Tensor:
    """bool (R, N): the tokens of each sample up to and with its first end-of-text token."""
    if eos_id is None:
        return torch.ones_like(sampled, dtype=torch.bool)
    is_end = sampled == eos_id
    return (is_end.cumsum(1) - is_end.long()) == 0


def _by_length(prompts: list[list[int]]) -> list[list[int]]:
    """Row indices grouped by prompt length, in the order of first appearance (one sampling batch each)."""
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(len(p), []).append(i)
    return list(groups.values())
