"""Tokenizers: training one on a dataset (with its token files), finding one again, loading it, its vocabulary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from engine import tokenizer as tk
from engine.rows import TokenizerRow
from engine.store.errors import WorkspaceError
from engine.store.schema import utc_now
from engine.tokenizer import Cancelled, Progress


class TokenizerMethods:
    """The tokenizers table and folders (a mixin of Workspace)."""

    def train_tokenizer(
        self,
        dataset_ref: int | str,
        kind: str,
        vocab_size: int,
        name: str | None = None,
        *,
        progress: Progress | None = None,
        cancelled: Cancelled | None = None,
        **spec_options: Any,
    ) -> TokenizerRow:
        """Train a tokenizer on a dataset's train.txt and encode train/val to token files (TokenizerError).

        spec_options are TokenizerSpec fields: min_frequency, special_tokens ({role: token}), normalizer,
        pre_tokenizer, sentinels; the row keeps the whole spec ("spec").
        """
        spec = tk.make_spec(kind, vocab_size, **spec_options)
        ds = self.dataset(dataset_ref)
        # Progress: training reads train.txt, then encoding reads train.txt and val.txt, at a similar pace.
        train_part, encode_part = _split_progress(progress, self._text_sizes(ds), with_training=True)
        with self._temp_dir(self.path / "tokenizers") as tmp:
            train_txt, _ = self.dataset_files(ds["id"])
            files = [train_txt]
            responses = [str(v) for v in self.labelled_documents(ds["id"], "train")[1] if isinstance(v, str)]
            if responses:  # a label column of texts (instruction tuning's responses) is read with the text
                files.append(tmp / "labels.txt")
                files[-1].write_text("\n".join(responses) + "\n", encoding="utf-8")
            tok = tk.train_from_spec(spec, files, progress=train_part, cancelled=cancelled)
            row = {
                "name": (name or "").strip() or f"{ds['name']}-{kind}-{tok.get_vocab_size()}",
                "requested_vocab_size": int(vocab_size),
            }
            row_id = self._encode_and_publish(tmp, tok, spec, ds, row, encode_part, cancelled)
        return self._ready(row_id, progress)

    def tokenizer_for_dataset(
        self,
        tokenizer_ref: int | str,
        dataset_ref: int | str,
        *,
        progress: Progress | None = None,
        cancelled: Cancelled | None = None,
    ) -> TokenizerRow:
        """A vocabulary reading another dataset's text (a run fine-tuned on new text keeps its parent's
        vocabulary): the tokenizer itself when it belongs to that dataset, else a copy of it with that dataset's
        text encoded (found again when made before; it keeps the id it was copied from, and find_tokenizer never
        offers it, since its tokens were learned from other text)."""
        source = self.tokenizer(tokenizer_ref)
        ds = self.dataset(dataset_ref)
        if source["dataset_id"] == ds["id"]:
            return source
        original = source.get("copied_from") or source["id"]
        for row in self.tokenizers(ds["id"]):
            if row.get("copied_from") == original and self._tokenizer_dir(row["id"]).is_dir():
                return row
        tok = self.load_tokenizer(source["id"])  # the same file as the original's, which may be in the trash
        spec = tk.TokenizerSpec(**source["spec"])
        _, encode_part = _split_progress(progress, self._text_sizes(ds), with_training=False)
        with self._temp_dir(self.path / "tokenizers") as tmp:
            row = {
                "name": f"{self.tokenizer(original)['name']} on {ds['name']}",
                "requested_vocab_size": source.get("requested_vocab_size") or source["vocab_size"],
                "copied_from": original,
            }
            row_id = self._encode_and_publish(tmp, tok, spec, ds, row, encode_part, cancelled)
        return self._ready(row_id, progress)

    def _text_sizes(self, ds: dict) -> tuple[int, int]:
        train_txt, val_txt = self.dataset_files(ds["id"])
        try:
            return train_txt.stat().st_size, val_txt.stat().st_size
        except OSError as e:
            raise WorkspaceError(f"dataset {ds['name']!r} has lost its text files: {e.strerror or e}") from None

    def _encode_and_publish(self, tmp: Path, tok, spec, ds: dict, row: dict, progress, cancelled) -> int:
        """Save `tok` in tmp, encode the dataset's train and val text with it, count the tokens, and publish the
        folder with its row (`row` adds the name and what the caller knows)."""
        train_txt, val_txt = self.dataset_files(ds["id"])
        tk.save_tokenizer(tok, tmp / "tokenizer.json")
        sep = tk.separator_id(tok, spec)
        tally = tk.UnknownTally(tk.unknown_id(tok, spec))
        sizes = self._text_sizes(ds)
        split = sizes[0] / max(1, sum(sizes))
        n_tokens = {}
        for part, (name, txt, lo, hi) in enumerate((("train", train_txt, 0.0, split), ("val", val_txt, split, 1.0))):
            n_tokens[name], dtype = tk.encode_to_memmap(
                tok,
                txt,
                tmp / f"{name}.bin",
                progress=lambda f, msg, lo=lo, hi=hi: progress(lo + (hi - lo) * f, msg),
                cancelled=cancelled,
                sep_id=sep,
                tally=tally,
                doc_starts=self.document_spans(ds["id"], name)[1:, 0],
            )
        vocab = tok.get_vocab_size()
        counts = sum(
            tk.token_counts(np.memmap(tmp / f"{f}.bin", dtype=dtype, mode="r") if n else np.zeros(0, dtype), vocab)
            for f, n in n_tokens.items()
        )
        np.save(tmp / "counts.npy", counts)
        row = {
            "dataset_id": ds["id"],
            "kind": spec.kind,
            "vocab_size": vocab,
            "created": utc_now(),
            "train_tokens": n_tokens["train"],
            "val_tokens": n_tokens["val"],
            "dtype": dtype,
            "spec": json.dumps(spec.to_dict()),
            "unk_share": tally.share,
            "unk_examples": json.dumps(tally.common(), ensure_ascii=False),
            **row,
        }
        return self._publish(tmp, self.path / "tokenizers", "tokenizers", row)

    def _ready(self, row_id: int, progress: Progress | None) -> TokenizerRow:
        row = self.tokenizer(row_id)
        if progress is not None:
            total = row["train_tokens"] + row["val_tokens"]
            progress(1.0, f"tokenizer ready: {row['vocab_size']:,} tokens, {total:,} tokens of text")
        return row

    def find_or_train_tokenizer(
        self,
        dataset_ref: int | str,
        kind: str,
        vocab_size: int,
        *,
        progress: Progress | None = None,
        cancelled: Cancelled | None = None,
        **spec_options: Any,
    ) -> TokenizerRow:
        """find_tokenizer's tokenizer, or a new one trained with that spec."""
        found = self.find_tokenizer(dataset_ref, kind, vocab_size, **spec_options)
        if found is not None:
            return found
        return self.train_tokenizer(
            dataset_ref, kind, vocab_size, progress=progress, cancelled=cancelled, **spec_options
        )

    def find_tokenizer(
        self, dataset_ref: int | str, kind: str, vocab_size: int, **spec_options: Any
    ) -> TokenizerRow | None:
        """The newest tokenizer of this dataset with the same kind, requested size and spec (special tokens and
        sentinels included), or None.

        A character vocabulary that took every character of the text (it came out smaller than asked for) is the
        same for any size at least as big, so it is found for those too.
        """
        spec = tk.make_spec(kind, vocab_size, **spec_options).to_dict()
        ds = self.dataset(dataset_ref)
        same = self._rows(
            "SELECT * FROM tokenizers WHERE dataset_id = ? AND kind = ? ORDER BY id DESC", [ds["id"], kind]
        )
        for row in map(self._tokenizer_row, same):
            if row.get("copied_from"):
                continue  # a vocabulary learned from another dataset's text (tokenizer_for_dataset)
            asked = int(row.get("requested_vocab_size") or row["vocab_size"])
            whole = kind == "char" and row["vocab_size"] < asked and int(vocab_size) >= row["vocab_size"]
            if not (asked == int(vocab_size) or whole) or not self._tokenizer_dir(row["id"]).is_dir():
                continue
            if {**row["spec"], "vocab_size": 0} == {**spec, "vocab_size": 0}:
                return row
        return None

    def _tokenizer_row(self, row: dict) -> TokenizerRow:
        row = dict(row)
        row["unk_examples"] = json.loads(row["unk_examples"]) if row.get("unk_examples") else []
        if row.get("spec"):
            row["spec"] = json.loads(row["spec"])
        else:  # from before schema 2: the kind's defaults, as trained then
            row["spec"] = tk.make_spec(row["kind"], row.get("requested_vocab_size") or row["vocab_size"]).to_dict()
        return row

    def tokenizer(self, ref: int | str) -> TokenizerRow:
        return self._tokenizer_row(self._find("tokenizers", "tokenizer", ref))

    def tokenizers(self, dataset_ref: int | str | None = None) -> list[TokenizerRow]:
        if dataset_ref is None:
            rows = self._rows("SELECT * FROM tokenizers ORDER BY id")
        else:
            rows = self._rows(
                "SELECT * FROM tokenizers WHERE dataset_id = ? ORDER BY id", [self.dataset(dataset_ref)["id"]]
            )
        return [self._tokenizer_row(r) for r in rows]

    def _tokenizer_dir(self, tokenizer_id: int) -> Path:
        return self.path / "tokenizers" / str(tokenizer_id)

    def tokenizer_path(self, ref: int | str) -> Path:
        return self._tokenizer_dir(self.tokenizer(ref)["id"]) / "tokenizer.json"

    def load_tokenizer(self, ref: int | str):
        """The tokenizers.Tokenizer itself, cached per workspace instance while its file is unchanged."""
        row = self.tokenizer(ref)
        path = self._tokenizer_dir(row["id"]) / "tokenizer.json"
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            self._tokenizers.pop(row["id"], None)
            raise WorkspaceError(
                f"tokenizer {row['name']!r} (id {row['id']}) has lost its file {path.name}; train it again"
            ) from None
        cached = self._tokenizers.get(row["id"])
        if cached is None or cached[0] != stamp:
            cached = self._tokenizers[row["id"]] = (stamp, tk.load_tokenizer(path))
        return cached[1]

    def token_files(self, ref: int | str) -> dict:
        row = self.tokenizer(ref)
        folder = self._tokenizer_dir(row["id"])
        return {
            "train": folder / "train.bin",
            "val": folder / "val.bin",
            "counts": folder / "counts.npy",
            "dtype": row["dtype"],
            "vocab_size": row["vocab_size"],
        }

    def vocab_rows(self, ref: int | str, offset: int = 0, limit: int | None = None) -> list[list]:
        """[[id, readable token, frequency in train+val, merge rank], ...] for ids offset..offset+limit, by id.

        The merge rank is the order in which BPE learned the merge that made the token (0 first); None for
        tokens that no merge made (characters, bytes, special tokens) and for kinds other than BPE.
        """
        row = self.tokenizer(ref)
        tok = self.load_tokenizer(row["id"])
        counts = np.load(self._tokenizer_dir(row["id"]) / "counts.npy", mmap_mode="r")
        ranks = self.merge_ranks(row["id"])
        start = max(0, int(offset))
        stop = row["vocab_size"] if limit is None else min(row["vocab_size"], start + max(0, int(limit)))
        return [[i, tk.display_token(tok, i), int(counts[i]), ranks.get(i)] for i in range(start, stop)]

    def merge_ranks(self, ref: int | str) -> dict[int, int]:
        """{token id: merge rank} of a BPE tokenizer (cached per workspace instance)."""
        tid = self.tokenizer(ref)["id"]
        if tid not in self._merge_ranks:
            self._merge_ranks[tid] = tk.merge_ranks(self.load_tokenizer(tid))
        return self._merge_ranks[tid]


def _split_progress(progress: Progress | None, sizes: tuple[int, int], *, with_training: bool):
    """(training's share, encoding's share) of one progress bar: training reads train.txt once and encoding
    reads train.txt and val.txt, at a similar pace."""
    report = progress or (lambda fraction, message: None)
    train_bytes, val_bytes = sizes
    total = max(1, (2 if with_training else 1) * train_bytes + val_bytes)
    cut = train_bytes / total if with_training else 0.0

    def training(f: float, msg: str) -> None:
        report(cut * f, msg)

    def encoding(f: float, msg: str) -> None:
        report(cut + (1 - cut) * f, msg)

    return training, encoding
