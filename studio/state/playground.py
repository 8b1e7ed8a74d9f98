"""What the Playground shows, without Qt: the text each model writes as its tokens stream in, what the panel says
about a finished text, which settings a mode uses, and what the token details say about one written token.

The Playground panel (studio/panels/playground.py) paints this; here it is tested without a window. A token is a
dict {"id", "text", "prob", "entropy", "top", "start", "end"}: "start" and "end" are the token's place in the
panel's text document, set by the widget that inserts it (a document counts UTF-16 units, not characters).
"""

from __future__ import annotations

import math
import random

import numpy as np

from engine.config import unknown_prompt_message
from studio.run_names import run_line
from engine.format import plural

MODES = [("sample", "Sampling"), ("greedy", "Greedy"), ("beam", "Beam search")]
# The settings each mode reads; "max_new" is read by every mode.
MODE_SETTINGS = {
    "sample": ("temperature", "top_k", "top_p", "seed"),
    "greedy": (),
    "beam": ("beam_width", "length_penalty"),
}
NO_TOKEN = "Click a written token to see what the model thought there."


def run_label(run: dict) -> str:
    return run_line(run, best=False)


def shown_settings(mode: str) -> set[str]:
    """The settings a generation mode uses (the others are hidden)."""
    return {*MODE_SETTINGS[mode], "max_new"}


def visible(text: str) -> str:
    """A token as a person can read it in a list: spaces and line breaks shown."""
    return text.replace(" ", "␣").replace("\n", "⏎").replace("\t", "⇥") or "∅"


def html_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def prompt_placeholder(text: str, max_words: int = 4, max_chars: int = 32) -> str:
    """'The start of a text, e.g. First Citizen:' from the first words of a dataset's first line of text."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    words: list[str] = []
    for word in line.split():
        if words and (len(words) == max_words or len(" ".join(words + [word])) > max_chars):
            break
        words.append(word[:max_chars])
    example = " ".join(words)
    return f"The start of a text, e.g. {example}" if example else "The start of a text"


def default_run_id(selected: dict | None, runs: list[dict]):
    """The run a new Playground writes with: the selected run if it has trained, else the newest trained run."""
    if selected is not None and int(selected.get("step") or 0) > 0:
        return selected.get("id")
    trained = [r for r in runs if int(r.get("step") or 0) > 0]
    if trained:
        return trained[-1].get("id")
    return selected.get("id") if selected else None


def checkpoint_label(row: dict) -> str:
    """'step 2,000, val 1.23': a checkpoint in a pane's checkpoint list."""
    val = row.get("val_loss")
    val = f", val {val:.2f}" if isinstance(val, (int, float)) else ""
    return f"step {int(row.get('step') or 0):,}{val}"


def shared_seed(seed: int | None, mode: str, n_texts: int) -> int | None:
    """The seed every text of one Generate uses: when two models sample, one seed for both, so only the model
    differs."""
    if seed is None and n_texts > 1 and mode == "sample":
        return random.randrange(2**31)
    return seed


def stats_text(reply) -> str:
    """'4 tokens · 123.4 tok/s' (and how the text ended, and the characters the vocabulary lacks)."""
    end = " (stopped)" if reply.stopped else (" · the model ended the text" if reply.ended else "")
    n = reply.n_tokens
    stats = f"{plural(n, 'token')} · {reply.tokens_per_sec:.1f} tok/s{end}"
    # Characters the vocabulary lacks read as [UNK]: say so, or the odd continuation looks like a bug.
    unknown = unknown_prompt_message(list(getattr(reply, "unknown_chars", None) or []))
    return f"{stats}\n{unknown}" if unknown else stats


def token_from_message(msg) -> dict:
    """A written token from a streamed Token message (its place in the document is set when it is inserted)."""
    return {
        "id": int(msg.token_id),
        "text": msg.text,
        "prob": msg.prob,
        "entropy": msg.entropy,
        "top": list(msg.top or []),
    }


# ------------------------------------------------------------------------------------------- one model's text


class GeneratedText:
    """What one model wrote for one Generate: the request it answers, the tokens painted and still to paint,
    the prompt's tokens (from the reply) and the token picked for details."""

    def __init__(self) -> None:
        self.request: str | None = None
        self.tokens: list[dict] = []  # written and painted, in order
        self.prompt_tokens: list[dict] = []  # from the reply: [{"id", "text"}]
        self.token_ids: list[int] = []
        self.generated = ""
        self.pending: list = []  # Token messages not painted yet
        self.selected: int | None = None
        self.stats = ""

    @property
    def writing(self) -> bool:
        return self.request is not None

    def start(self) -> None:
        """A new text: what was written before goes (the caller then sets the request it sends)."""
        self.tokens, self.prompt_tokens, self.token_ids, self.pending = [], [], [], []
        self.generated = ""
        self.selected = None
        self.stats = "Writing…"

    def take_pending(self) -> list[dict]:
        """The tokens streamed since the last paint, as tokens to insert; each is then `written`."""
        pending, self.pending = self.pending, []
        return [token_from_message(msg) for msg in pending]

    def written(self, token: dict) -> None:
        self.tokens.append(token)
        self.generated += token["text"]

    def finish(self, reply) -> bool:
        """The generation's reply came (after its tokens were painted). True when it carries a text no token was
        streamed for (an older engine), which is then shown whole."""
        self.request = None
        if not reply.ok:
            self.stats = ""
            return False
        whole = not self.generated and bool(reply.text)
        if whole:
            self.generated = reply.text
        self.prompt_tokens = list(reply.prompt_tokens or [])
        self.token_ids = [int(t) for t in (reply.token_ids or [t["id"] for t in self.tokens])]
        self.stats = stats_text(reply)
        return whole

    def token_at(self, position: int) -> int | None:
        """The written token at a document position (None in the prompt or past the end)."""
        for i, token in enumerate(self.tokens):
            if token["start"] <= position < token["end"]:
                return i
        return None

    def attention_query(self, index: int) -> tuple[list[int], int] | None:
        """(ids, position) whose attention row shows where the model looked when it chose token `index`: the row
        of the position just before it, over the prompt and the tokens written before it."""
        if not self.prompt_tokens and not self.token_ids:
            return None
        ids = [int(t["id"]) for t in self.prompt_tokens] + [int(t) for t in self.token_ids[:index]]
        position = len(ids) - 1
        if position < 0:
            return None
        return ids, position


# ---------------------------------------------------------------------------------------------- token details


def token_heading(token: dict, index: int, n_tokens: int) -> str:
    return f"Token {index + 1} of {n_tokens}: <b>‘{html_text(visible(token['text']))}’</b> (id {token['id']})"


def probability_text(prob: float | None) -> str:
    return f"Probability: <b>{100 * prob:.1f} %</b>" if prob is not None else "Probability: not sent by the engine"


def entropy_text(entropy: float | None) -> str:
    if entropy is None:
        return ""
    return (
        f"Entropy: <b>{entropy:.2f} nats</b> — as unsure as a pick among about {math.exp(entropy):.1f} equally "
        "likely tokens"
    )


def token_tooltip(token: dict) -> str:
    if token.get("prob") is None:
        return "Click for details."
    return f"probability {100 * token['prob']:.1f} % — click for the alternatives"


def decode_token_attention(reply) -> np.ndarray:
    """float32 [layer, head, keys] of a TokenAttentionReply."""
    L, H, n = (int(x) for x in reply.shape)
    return np.frombuffer(reply.buffers[0], dtype="<f2").reshape(L, H, n).astype(np.float32)


def attention_row(weights: np.ndarray, layer: int, head: int) -> np.ndarray:
    """One head's row of a [layer, head, keys] array, or the layer's mean over heads when head < 0."""
    return weights[layer].mean(axis=0) if head < 0 else weights[layer, head]


def key_tokens(reply, n_keys: int) -> list[str]:
    """The reply's key tokens, or placeholders when they do not match the row."""
    return list(reply.tokens) if len(reply.tokens) == n_keys else [f"#{i}" for i in range(n_keys)]


def attention_html(tokens: list[str], weights: np.ndarray, rgb: tuple[int, int, int]) -> str:
    """The earlier tokens as running text, each behind colour `rgb` as strong as the weight it got."""
    hi = float(weights.max()) if weights.size else 1.0
    parts = []
    for t, w in zip(tokens, weights):
        alpha = 0.0 if hi <= 0 else float(w) / hi
        color = f"rgba({rgb[0]},{rgb[1]},{rgb[2]},{alpha:.2f})"
        # Keys come as display tokens (␣ for a space): in running text a space reads better; a line break
        # keeps its ⏎ so that its colour shows.
        shown = html_text(t.replace("␣", " ").replace("⏎", "⏎\n")).replace("\n", "<br>")
        parts.append(f'<span style="background-color:{color}" title="{float(w):.3f}">{shown}</span>')
    return "<div style='white-space: pre-wrap'>" + "".join(parts) + "</div>"


def strongest_text(tokens: list[str], weights: np.ndarray, n: int = 5) -> str:
    order = np.argsort(-weights)[:n]
    return "Strongest: " + ", ".join(f"‘{html_text(visible(tokens[i]))}’ (#{i}) {float(weights[i]):.2f}" for i in order)


class TokenAttentions:
    """Where the model looked at each token asked about: TokenAttentionReplies by (text, run, checkpoint, token),
    kept until the next Generate, so a second click on a token asks the engine nothing."""

    def __init__(self) -> None:
        self._replies: dict[tuple, object] = {}

    @staticmethod
    def key(text: int, run, checkpoint, index: int) -> tuple:
        return (text, run, checkpoint, index)

    def get(self, key: tuple):
        return self._replies.get(key)

    def put(self, key: tuple, reply) -> None:
        self._replies[key] = reply

    def __contains__(self, key: tuple) -> bool:
        return key in self._replies

    def clear(self) -> None:
        self._replies.clear()
