"""Train, save, load and inspect Hugging Face `tokenizers` tokenizers, and encode a text file to a token memmap.

Kinds (every one saves as a tokenizer.json that `tokenizers.Tokenizer.from_file` and
`transformers.PreTrainedTokenizerFast(tokenizer_file=...)` load unchanged):
- "char": one token per character, like nanoGPT's shakespeare_char, plus "[UNK]" for characters left out;
- "bpe": BPE on characters, words marked by "▁" (Metaspace), unknown characters to "[UNK]";
- "bytebpe": GPT-2 style byte-level BPE with the special token "<|endoftext|>" (never an unknown token);
- "wordpiece": BERT style WordPiece ("##" continues a word), with BERT's special tokens; not lossless (spaces
  are rebuilt on decode);
- "unigram": SentencePiece style Unigram on "▁"-marked words.
char, bpe, bytebpe and unigram are lossless (decode(encode(text)) == text) for text whose characters were seen in
training, with the default normalizer; bytebpe for any text.

Text is always read here in bounded, line-aligned chunks: `tokenizers` takes gigabytes of memory on one huge line.

The package: spec.py (the kinds, special token roles and TokenizerSpec; standard library only), training.py,
files.py (saving and loading tokenizer.json), streaming.py (text in and token files out, in bounded chunks),
special_tokens.py (the separator, unknown, mask and sentinel tokens, the ones an objective needs, the
unknown-text tally) and display.py (tokens as a person
reads them). Callers import from the package.
"""

from engine.tokenizer.display import display_token, is_byte_level, is_metaspace, merge_ranks, token_spans
from engine.tokenizer.errors import TokenizerCancelled, TokenizerError
from engine.tokenizer.files import load_tokenizer, save_tokenizer
from engine.tokenizer.spec import (
    DEFAULT_PRE_TOKENIZER,
    DEFAULT_SPECIALS,
    EOT,
    KINDS,
    METASPACE,
    NORMALIZERS,
    PRE_TOKENIZERS,
    ROLES,
    UNK,
    TokenizerSpec,
    make_spec,
)
from engine.tokenizer.special_tokens import (
    EXAMPLES_KEPT,
    SENTINEL,
    UnknownTally,
    missing_specials,
    role_ids,
    sentinel_ids,
    separator_id,
    spec_options_for,
    unknown_characters,
    unknown_id,
    with_specials,
)
from engine.tokenizer.streaming import (
    CHUNK_BYTES,
    PIECE_CHARS,
    Cancelled,
    Progress,
    encode_to_memmap,
    split_pieces,
    token_counts,
    token_dtype,
)
from engine.tokenizer.training import char_tokenizer_of_text, train_from_spec, train_tokenizer

__all__ = [
    "CHUNK_BYTES",
    "DEFAULT_PRE_TOKENIZER",
    "DEFAULT_SPECIALS",
    "EOT",
    "EXAMPLES_KEPT",
    "KINDS",
    "METASPACE",
    "NORMALIZERS",
    "PIECE_CHARS",
    "PRE_TOKENIZERS",
    "ROLES",
    "SENTINEL",
    "UNK",
    "Cancelled",
    "Progress",
    "TokenizerCancelled",
    "TokenizerError",
    "TokenizerSpec",
    "UnknownTally",
    "char_tokenizer_of_text",
    "display_token",
    "encode_to_memmap",
    "is_byte_level",
    "is_metaspace",
    "load_tokenizer",
    "make_spec",
    "merge_ranks",
    "missing_specials",
    "role_ids",
    "save_tokenizer",
    "sentinel_ids",
    "separator_id",
    "spec_options_for",
    "split_pieces",
    "token_counts",
    "token_dtype",
    "token_spans",
    "train_from_spec",
    "train_tokenizer",
    "unknown_characters",
    "unknown_id",
    "with_specials",
]
