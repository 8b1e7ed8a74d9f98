"""The engine's request handlers for data and tokenizers (a mixin of engine.worker.Engine).

Quick ones (a dataset's preview, the trash, renaming, a vocabulary page, tokenizing a text) are answered on the
reader thread; importing and training a tokenizer are long jobs for the main lane; looking at files and
tokenizers (import previews, a token's contexts, document lengths, comparisons, export) goes to the read-only
side lane. Engine (engine/worker.py) finds each by its name, `_handle_<kind>`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from engine import protocol as p
from engine.config import ConfigError
from engine.data.errors import DataError

if TYPE_CHECKING:
    from engine.worker import Job


class DataHandlers:
    """Requests about datasets, tokenizers and the trash; uses Engine's ws(), send(), _enqueue() and _progress()."""

    def _handle_dataset_preview_request(self, msg: p.DatasetPreviewRequest) -> None:
        ws = self.ws()
        self.send(
            p.DatasetPreviewReply(
                parent=msg.id, dataset=ws.dataset(msg.dataset), text=ws.dataset_preview(msg.dataset, msg.n_chars)
            )
        )

    def _handle_delete_request(self, msg: p.DeleteRequest) -> None:
        ws = self.ws()
        if msg.item_kind == "run" and self.training_run is not None and ws.run(msg.ref)["id"] == self.training_run:
            self.send(p.error_reply(msg, "this run is training: stop it before deleting it"))
            return
        # What a running job reads cannot be deleted anyway: its run uses its dataset and tokenizer.
        self.send(p.DeleteReply(parent=msg.id, trash=ws.delete(msg.item_kind, msg.ref)))

    def _handle_rename_request(self, msg: p.RenameRequest) -> None:
        if msg.item_kind != "run":
            self.send(p.error_reply(msg, f"only runs can be renamed, not a {msg.item_kind}"))
            return
        # A quick write, answered here; the trainer never writes the name, so a training run can be renamed.
        self.send(p.RenameReply(parent=msg.id, row=self.ws().rename_run(msg.ref, msg.name)))

    def _handle_restore_request(self, msg: p.RestoreRequest) -> None:
        ws = self.ws()
        kind = ws.trash_entry(msg.trash_id)["kind"]
        self.send(p.RestoreReply(parent=msg.id, item_kind=kind, row=ws.restore(msg.trash_id)))

    def _handle_trash_request(self, msg: p.TrashRequest) -> None:
        ws = self.ws()
        emptied = ws.empty_trash() if msg.empty else 0
        self.send(p.TrashReply(parent=msg.id, rows=ws.trash(), emptied=emptied))

    def _handle_vocab_request(self, msg: p.VocabRequest) -> None:
        ws = self.ws()
        self.send(
            p.VocabReply(
                parent=msg.id,
                tokenizer=ws.tokenizer(msg.tokenizer),
                rows=ws.vocab_rows(msg.tokenizer, msg.offset, msg.limit),
            )
        )

    def _handle_tokenize_request(self, msg: p.TokenizeRequest) -> None:
        """On the side lane (a long text must never hold the lane that Stop and Pause use), and bounded: a
        reply lists every token, so a whole corpus would be a frame of tens of MB."""
        check_text_size(msg.text, "Try a text")

        def run(job: Job) -> None:
            from engine.tokenizer import token_spans

            tok = self.ws().load_tokenizer(msg.tokenizer)
            self.send(p.TokenizeReply(parent=msg.id, spans=token_spans(tok, msg.text)))

        self._enqueue(msg, run, read_only=True)

    def _handle_import_request(self, msg: p.ImportRequest) -> None:
        def run(job: Job) -> None:
            ds = self.ws().import_dataset(
                [Path(x).expanduser() for x in msg.paths],
                msg.name,
                msg.val_fraction,
                progress=self._progress(msg),
                cancelled=job.cancelled,
                **_options(msg.options),
            )
            self.send(p.ImportReply(parent=msg.id, dataset=ds))

        self._enqueue(msg, run)

    def _handle_tokenizer_train_request(self, msg: p.TokenizerTrainRequest) -> None:
        def run(job: Job) -> None:
            tok = self.ws().train_tokenizer(
                msg.dataset,
                msg.tokenizer_kind,
                msg.vocab_size,
                msg.name,
                progress=self._progress(msg),
                cancelled=job.cancelled,
                **_options(msg.options),
            )
            self.send(p.TokenizerTrainReply(parent=msg.id, tokenizer=tok))

        self._enqueue(msg, run)

    # Looking at data and tokenizers reads files but writes nothing, so it runs beside training (in the
    # read-only side lane) and never waits for a long import to finish.
    def _handle_import_preview_request(self, msg: p.ImportPreviewRequest) -> None:
        def run(job: Job) -> None:
            from engine.data.cleaning import clean_preview, clean_records
            from engine.data.importers import preview_records

            opts = _options(msg.options)
            cleaning = opts.pop("cleaning", None)
            preview = preview_records([Path(x).expanduser() for x in msg.paths], n=max(1, int(msg.n)), **opts)
            records = preview["records"]
            self.send(
                p.ImportPreviewReply(
                    parent=msg.id,
                    preview=preview,
                    cleaned=clean_records(records, cleaning),
                    cleaning=clean_preview(records, cleaning),
                )
            )

        self._enqueue(msg, run, read_only=True)

    def _handle_token_contexts_request(self, msg: p.TokenContextsRequest) -> None:
        def run(job: Job) -> None:
            from engine.tokenizer import display_token
            from engine.tokenizer.analysis import token_contexts

            ws = self.ws()
            row = ws.tokenizer(msg.tokenizer)
            contexts = token_contexts(ws, row["id"], msg.token_id, n=msg.n, width=msg.width)
            freq = ws.vocab_rows(row["id"], msg.token_id, 1)
            self.send(
                p.TokenContextsReply(
                    parent=msg.id,
                    contexts=contexts,
                    token=display_token(ws.load_tokenizer(row["id"]), msg.token_id),
                    frequency=int(freq[0][2]) if freq else 0,
                )
            )

        self._enqueue(msg, run, read_only=True)

    def _handle_doc_lengths_request(self, msg: p.DocLengthsRequest) -> None:
        def run(job: Job) -> None:
            from engine.tokenizer.analysis import doc_length_histogram

            self.send(
                p.DocLengthsReply(
                    parent=msg.id,
                    histogram=doc_length_histogram(self.ws(), msg.tokenizer, split=msg.split, bins=msg.bins),
                )
            )

        self._enqueue(msg, run, read_only=True)

    def _handle_tokenizer_compare_request(self, msg: p.TokenizerCompareRequest) -> None:
        check_text_size(msg.text, "Compare")

        def run(job: Job) -> None:
            from engine.tokenizer.analysis import compare_tokenizers

            self.send(
                p.TokenizerCompareReply(
                    parent=msg.id,
                    result=compare_tokenizers(self.ws(), list(msg.tokenizers), text=msg.text, cancelled=job.cancelled),
                )
            )

        self._enqueue(msg, run, read_only=True)

    def _handle_tokenizer_export_request(self, msg: p.TokenizerExportRequest) -> None:
        def run(job: Job) -> None:
            from engine.tokenizer.export import export_tokenizer

            if not str(msg.path).strip():
                raise ConfigError("choose where to export the tokenizer")
            out = export_tokenizer(self.ws(), msg.tokenizer, Path(msg.path).expanduser())
            self.send(p.TokenizerExportReply(parent=msg.id, path=str(out)))

        self._enqueue(msg, run, read_only=True)


def _options(options) -> dict:
    """Request options as keyword arguments; a non-dict is a studio bug reported as one line."""
    if not options:
        return {}
    if not isinstance(options, dict):
        raise ConfigError(f"options must be a JSON object, not {type(options).__name__}")
    return {str(k): v for k, v in options.items()}


MAX_TEXT_CHARS = 100_000  # about 30 pages; a reply of its tokens stays around a megabyte


def check_text_size(text: str | None, where: str) -> None:
    if text is not None and len(text) > MAX_TEXT_CHARS:
        raise DataError(
            f"{where} reads at most {MAX_TEXT_CHARS:,} characters at a time, and this text has {len(text):,}: "
            f"paste a shorter piece (a whole corpus is what the dataset's statistics are for)"
        )
