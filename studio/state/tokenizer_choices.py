"""The tokenizer choices in the studio's words, without Qt: a label and a line of help for each kind,
normalizer, pre-tokenizer and special-token role, and a tokenizer row summed up in a few lines.

The values themselves (kinds, roles, defaults) are engine/choices.py's, which the engine checks against; only
the words are here, in the engine's order (which is also the order a newcomer should meet them).
"""

from __future__ import annotations

from engine.choices import DEFAULT_PRE_TOKENIZER, NORMALIZERS, PRE_TOKENIZERS, TOKENIZER_KINDS
from engine.format import human_count

KIND_WORDS = {
    "char": (
        "Character",
        "One token per character (letter, digit, space, punctuation). Small vocabulary, long sequences; "
        "simple and a good start, as in nanoGPT's Shakespeare example.",
    ),
    "bpe": (
        "BPE",
        "Byte-pair encoding on characters: the commonest pair of pieces is merged again and again, so frequent "
        "words and parts of words become single tokens. ▁ marks where a word starts; unseen characters become "
        "[UNK].",
    ),
    "bytebpe": (
        "Byte-level BPE",
        "Frequent pieces of words become single tokens (as in GPT-2). Shorter sequences, bigger vocabulary; "
        "any text can be written, even characters never seen in training.",
    ),
    "wordpiece": (
        "WordPiece",
        "BERT's tokenizer: words are cut into known pieces, ## marks a piece that continues a word. Spaces "
        "are not kept exactly, so decoding does not give the text back character for character.",
    ),
    "unigram": (
        "Unigram",
        "SentencePiece's Unigram (as in T5 and ALBERT): keeps the set of pieces that best explains the text "
        "and cuts each word the most likely way. ▁ marks where a word starts.",
    ),
}
NORMALIZER_WORDS = {
    "none": ("None", "Keep the text exactly as it is."),
    "nfc": ("NFC", "Unicode NFC: write accented letters one way (é as one character), nothing else changes."),
    "nfkc": ("NFKC", "Unicode NFKC: also fold look-alikes (ﬁ → fi, full-width letters, superscripts)."),
    "lowercase": ("Lowercase", "Lower-case everything: 'The' and 'the' become the same token; capitals are lost."),
    "nfkc_lowercase": ("NFKC + lowercase", "NFKC, then lower-case."),
    "bert": (
        "BERT",
        "BERT's clean-up: removes control characters, spaces out Chinese characters, lower-cases and strips accents.",
    ),
}
PRE_TOKENIZER_WORDS = {
    "none": ("None (characters)", "A character tokenizer needs no words."),
    "bytelevel": ("Byte-level (GPT-2)", "GPT-2's splitter on the text's bytes; fixed for byte-level BPE."),
    "metaspace": ("Metaspace (▁)", "Spaces become ▁ at the start of words; lossless, as in SentencePiece."),
    "whitespace": ("Whitespace", "Cut at spaces and between letters and punctuation; spaces are dropped."),
    "whitespace_split": ("Whitespace split", "Cut at spaces only; punctuation stays on its word; spaces are dropped."),
    "bert": ("BERT", "BERT's word splitter: at spaces and around every punctuation mark."),
}
ROLE_TIPS = {
    "pad": "Fills up short sequences so a batch has one length.",
    "unk": "Stands for anything the vocabulary cannot write. Every kind except byte-level BPE needs one.",
    "bos": "Marks the beginning of a text.",
    "eos": "Marks the end of a text (GPT-2's <|endoftext|>); generation can stop there.",
    "mask": "Hides a token in masked-language-model training (BERT).",
    "cls": "BERT's token at the start of a text, whose vector sums the text up for classification.",
    "sep": "Separates two texts given together (BERT).",
}


def _worded(values: tuple[str, ...], words: dict[str, tuple[str, str]]) -> tuple[tuple[str, str, str], ...]:
    # A value the studio has no words for yet still appears, under its own name.
    return tuple((v, *words.get(v, (v, ""))) for v in values)


# (key, label, one-line help), in the engine's order
KINDS = _worded(TOKENIZER_KINDS, KIND_WORDS)
NORMALIZER_CHOICES = _worded(NORMALIZERS, NORMALIZER_WORDS)
PRE_TOKENIZER_CHOICES = _worded(PRE_TOKENIZERS, PRE_TOKENIZER_WORDS)
KIND_LABELS = {k: label for k, label, _ in KINDS}


def tokenizer_summary(t: dict) -> str:
    """A few lines about a tokenizer row: kind, size, how it was set up when not the kind's defaults, tokens."""
    kind = KIND_LABELS.get(t.get("kind"), t.get("kind", ""))
    lines = [f"<b>{_esc(kind)}</b>, {int(t.get('vocab_size', 0)):,} tokens"]
    spec = t.get("spec") if isinstance(t.get("spec"), dict) else {}
    setup = []
    if spec.get("normalizer") not in (None, "none"):
        setup.append(f"normalizer {spec['normalizer']}")
    if spec.get("pre_tokenizer") and spec["pre_tokenizer"] != DEFAULT_PRE_TOKENIZER.get(t.get("kind")):
        setup.append(f"words: {spec['pre_tokenizer'].replace('_', ' ')}")
    if spec.get("min_frequency"):
        setup.append(f"min frequency {int(spec['min_frequency']):,}")
    if setup:
        lines.append(" · ".join(setup))
    specials = spec.get("special_tokens") or {}
    if specials:
        lines.append("Special tokens: " + ", ".join(f"{_esc(v)} ({r})" for r, v in specials.items()))
    lines.append(
        f"Training text: {human_count(t.get('train_tokens') or 0)} tokens · validation: "
        f"{human_count(t.get('val_tokens') or 0)} tokens"
    )
    return "<br>".join(lines)


def _esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
