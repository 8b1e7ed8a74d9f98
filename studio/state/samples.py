"""A REINFORCE run's latest samples, as the Train panel lists them (Qt-free): each prompt, what the model wrote
after it and the reward that earned, with line breaks made visible so a sample reads on one line."""

from __future__ import annotations

from dataclasses import dataclass

_VISIBLE = str.maketrans({"\n": "⏎", "\t": "⇥"})


@dataclass(frozen=True)
class SampleRow:
    prompt: str
    text: str
    reward: float | None
    share: float  # where the reward lies between the lowest and the highest shown, 0..1 (the cell's shade)


def sample_rows(samples: list[dict]) -> list[SampleRow]:
    """Every sample in order (a prompt's samples side by side); a sample without a number has no reward shown."""
    rewards = [s.get("reward") for s in samples if isinstance(s.get("reward"), (int, float))]
    low, high = (min(rewards), max(rewards)) if rewards else (0.0, 0.0)
    rows = []
    for s in samples:
        r = s.get("reward") if isinstance(s.get("reward"), (int, float)) else None
        share = 0.0 if r is None or high == low else (r - low) / (high - low)
        if r is not None and high == low:
            share = 1.0 if high > 0 else 0.0
        rows.append(SampleRow(visible(str(s.get("prompt", ""))), visible(str(s.get("text", ""))), r, share))
    return rows


def visible(text: str) -> str:
    return text.translate(_VISIBLE)


def samples_caption(samples: list[dict], step: int | None) -> str:
    """'What it writes at step 120: mean reward 0.81 over 8 samples'."""
    rewards = [float(s["reward"]) for s in samples if isinstance(s.get("reward"), (int, float))]
    at = f" at step {step:,}" if step is not None else ""
    if not rewards:
        return f"What it writes{at}"
    return f"What it writes{at}: mean reward {sum(rewards) / len(rewards):.2f} over {len(rewards)} samples"
