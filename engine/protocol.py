"""The studio <-> engine wire protocol: typed, versioned messages, JSON-encoded, sent in batches.

Standard library only: both processes import it. Modelled on Jupyter's kernel protocol:
- commands are `<action>_request`, answered by one `<action>_reply` whose `parent` is the request's `id`,
  with `status` "ok" or "error" and, on error, a human-readable `error`;
- broadcasts are nouns (`status`, `metrics`, `eval`, `token`, `progress`, `log`, `heartbeat`); those caused by a
  request carry its id in `parent`;
- a `hello` handshake checks the major protocol version;
- unknown kinds and unknown fields are ignored, never fatal, so either side can be newer.

A frame on the connection is one UTF-8 JSON object `{"v": PROTOCOL_VERSION, "msgs": [...]}`, sent with
`Connection.send_bytes`. Messages that carry arrays (attention weights) put the raw bytes in `buffers`; a batch
with buffers goes as a binary frame: BINARY_MAGIC, the JSON header's length (4 bytes, big-endian), the JSON
header (each message lists its buffers' lengths), then the buffers back to back. Never pickle: a stray peer must
not be able to run code in either process.

Long file: it is the catalogue of every message kind, read side by side with docs/PROTOCOL.md; one file keeps
the whole wire in one place, as Jupyter's messaging document does.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import struct
import sys
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, cast

if sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:  # 3.10: the decorator only informs type checkers

    def dataclass_transform(**_kwargs):
        return lambda fn: fn


PROTOCOL_VERSION = "1.10"  # the minor number grows with new kinds and fields (both sides ignore unknown ones)
MAX_BATCH = 64  # messages per frame
BINARY_MAGIC = b"TSB1"
FLUSH_INTERVAL_S = 0.05  # the engine sends a pending batch at least this often

# The words the wire uses for states and actions. The engine process is idle or busy (and stopped as it exits);
# a run in progress is starting, training, paused or stopping; a run that ended finished, was stopped, or failed.
# A Status carries the two apart (engine_state, run_state, since 1.5) and, for older studios, either in `state`;
# read them with `status_states`, which also understands an older engine's `state`.
EngineState = Literal["idle", "busy", "stopped"]
RunState = Literal["starting", "training", "paused", "stopping"]
RunOutcome = Literal["finished", "stopped", "failed"]
ENGINE_STATES: tuple[EngineState, ...] = ("idle", "busy", "stopped")
RUN_STATES: tuple[RunState, ...] = ("starting", "training", "paused", "stopping")
RUN_OUTCOMES: tuple[RunOutcome, ...] = ("finished", "stopped", "failed")
ControlAction = Literal["stop", "pause", "resume", "apply_advice", "cancel"]
ReplyStatus = Literal["ok", "error"]

_REGISTRY: dict[str, type["Message"]] = {}
_counter = itertools.count(1)


def _new_id() -> str:
    return f"{os.getpid()}-{next(_counter)}"


@dataclass_transform(frozen_default=True, kw_only_default=True)
def message(kind: str):
    """Class decorator: a frozen dataclass message registered under its wire `kind`."""

    def wrap(cls):
        cls = dataclass(frozen=True, kw_only=True)(cls)
        cls.kind = kind
        _REGISTRY[kind] = cls
        return cls

    return wrap


@dataclass(frozen=True, kw_only=True)
class Message:
    kind: ClassVar[str] = ""
    id: str = field(default_factory=_new_id)
    parent: str | None = None
    # Raw array bytes (float16 attention weights...); travel outside the JSON, see the module docstring.
    buffers: tuple = ()

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "buffers"}
        d["kind"] = self.kind
        return d


@dataclass(frozen=True, kw_only=True)
class Reply(Message):
    status: ReplyStatus = "ok"
    error: str | None = None  # one readable line when status == "error"
    # The config field an error is about ("model.n_head") and every field involved, so the studio can mark them
    # without reading `error`; None and [] when the error names no field.
    field: str | None = None
    fields: list = dataclasses.field(default_factory=list)  # dataclasses.field: `field` here is the line above

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True, kw_only=True)
class Unknown(Message):
    """A message of a kind this side does not know (a newer peer); kept so it can be logged, otherwise ignored."""

    kind_name: str = ""
    data: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------ handshake


@message("hello_request")
class HelloRequest(Message):
    protocol_version: str = PROTOCOL_VERSION


@message("hello_reply")
class HelloReply(Reply):
    protocol_version: str = PROTOCOL_VERSION
    engine_version: str = ""
    pid: int = 0
    device: str = "cpu"  # "cpu" | "cuda"
    device_name: str = ""  # "CPU (2 threads)" or the GPU's name
    torch_version: str = ""
    workspace: dict = field(default_factory=dict)  # Workspace.summary()


@message("shutdown_request")
class ShutdownRequest(Message):
    pass


@message("shutdown_reply")
class ShutdownReply(Reply):
    pass


@message("ping_request")
class PingRequest(Message):
    """(1.10) Answered by the engine's reader at once: the heartbeat proves the sender alive, this the command lane."""


@message("ping_reply")
class PingReply(Reply):
    job: str = ""  # the kind of the long job running now ("" when none)
    job_s: float = 0.0  # how long it has run


@message("detach_request")
class DetachRequest(Message):
    """(1.10) The window is closing but the run goes on: the engine keeps training without a studio, listens on an
    endpoint it records in the workspace, and a studio opened later reattaches to it."""


@message("detach_reply")
class DetachReply(Reply):
    run: int | None = None  # the run that goes on training


# ------------------------------------------------------------------------------------------------ workspace


@message("workspace_request")
class WorkspaceRequest(Message):
    """Open (path given) or re-read (path None) the workspace; the reply has its summary."""

    path: str | None = None


@message("workspace_reply")
class WorkspaceReply(Reply):
    workspace: dict = field(default_factory=dict)  # {"path", "datasets", "tokenizers", "runs"}


# ---------------------------------------------------------------------------------------- data & tokenizer


@message("import_request")
class ImportRequest(Message):
    """Import files/folders as a new dataset. options: engine.data.importers.ImportOptions fields (fmt, column,
    label_column, include, exclude, doc_unit, delimiter, on_decode_error, on_bad_record, cleaning (a
    CleaningConfig dict), split, seed); {} imports plain text with no cleaning."""

    paths: list = field(default_factory=list)
    name: str | None = None
    val_fraction: float = 0.1
    options: dict = field(default_factory=dict)


@message("import_reply")
class ImportReply(Reply):
    dataset: dict = field(default_factory=dict)


@message("import_preview_request")
class ImportPreviewRequest(Message):
    """The first `n` records an import with these options would read, and what the cleaning would do to them,
    before anything is imported. Problems with the input come back as warnings in `preview`, not as an error."""

    paths: list = field(default_factory=list)
    options: dict = field(default_factory=dict)
    n: int = 20


@message("import_preview_reply")
class ImportPreviewReply(Reply):
    # engine.data.importers.preview_records: {"format", "columns", "column_types", "records": [{"text", "label",
    # "source", "line", "fields"}], "warnings", "files"}
    preview: dict = field(default_factory=dict)
    cleaned: list = field(default_factory=list)  # each record's text after cleaning; None where it is dropped
    cleaning: dict = field(default_factory=dict)  # per step: {"removed_docs", "changed_docs", "removed_lines",
    #                                               "examples": [[before, after], ...]}, in the order steps run


@message("dataset_preview_request")
class DatasetPreviewRequest(Message):
    dataset: int | str = 0
    n_chars: int = 4000


@message("dataset_preview_reply")
class DatasetPreviewReply(Reply):
    dataset: dict = field(default_factory=dict)
    text: str = ""


@message("delete_request")
class DeleteRequest(Message):
    """Move a dataset, tokenizer or run to the workspace's trash; refused while a tokenizer or run still uses it
    (and for the run that is training)."""

    item_kind: str = "dataset"  # "dataset" | "tokenizer" | "run"
    ref: int | str = 0


@message("delete_reply")
class DeleteReply(Reply):
    trash: dict = field(default_factory=dict)  # {"id", "kind", "item_id", "name", "deleted"}: restore_request(id)


@message("rename_request")
class RenameRequest(Message):
    """Give a run a new name (added in protocol 1.3; a 1.2 engine ignores it, so the studio checks the version)."""

    item_kind: str = "run"  # only runs can be renamed
    ref: int | str = 0
    name: str = ""


@message("rename_reply")
class RenameReply(Reply):
    row: dict = field(default_factory=dict)  # the renamed run, as in the workspace summary


@message("restore_request")
class RestoreRequest(Message):
    trash_id: int = 0


@message("restore_reply")
class RestoreReply(Reply):
    item_kind: str = ""
    row: dict = field(default_factory=dict)  # the dataset or tokenizer row, as in the workspace summary


@message("trash_request")
class TrashRequest(Message):
    """What the trash holds; with empty=True, delete it all for good first (the reply then lists nothing)."""

    empty: bool = False


@message("trash_reply")
class TrashReply(Reply):
    rows: list = field(default_factory=list)  # [{"id", "kind", "item_id", "name", "deleted"}], oldest first
    emptied: int = 0  # how many were deleted for good


@message("tokenizer_train_request")
class TokenizerTrainRequest(Message):
    dataset: int | str = 0
    tokenizer_kind: str = "char"
    vocab_size: int = 512
    name: str | None = None
    # engine.tokenizer.TokenizerSpec options: min_frequency, special_tokens ({role: token}, None removes a
    # default), normalizer, pre_tokenizer
    options: dict = field(default_factory=dict)


@message("tokenizer_train_reply")
class TokenizerTrainReply(Reply):
    tokenizer: dict = field(default_factory=dict)


@message("vocab_request")
class VocabRequest(Message):
    tokenizer: int | str = 0
    offset: int = 0
    limit: int | None = None


@message("vocab_reply")
class VocabReply(Reply):
    tokenizer: dict = field(default_factory=dict)
    rows: list = field(default_factory=list)  # [[id, token, frequency, merge rank or None], ...]


@message("tokenize_request")
class TokenizeRequest(Message):
    tokenizer: int | str = 0
    text: str = ""


@message("tokenize_reply")
class TokenizeReply(Reply):
    spans: list = field(default_factory=list)  # [{"id", "token", "start", "end"}, ...]


@message("token_contexts_request")
class TokenContextsRequest(Message):
    tokenizer: int | str = 0
    token_id: int = 0
    n: int = 10
    width: int = 40


@message("token_contexts_reply")
class TokenContextsReply(Reply):
    token: str = ""  # the token, readable
    frequency: int = 0  # occurrences in the tokenizer's dataset (train + validation)
    contexts: list = field(default_factory=list)  # lines: `width` chars before, the token in ⟦ ⟧, `width` after


@message("doc_lengths_request")
class DocLengthsRequest(Message):
    tokenizer: int | str = 0
    split: str = "train"
    bins: int = 30


@message("doc_lengths_reply")
class DocLengthsReply(Reply):
    # engine.tokenizer.analysis.doc_length_histogram: {"split", "n_docs", "sampled", "counts", "edges", "min", "max",
    # "mean", "median", "p95"}
    histogram: dict = field(default_factory=dict)


@message("tokenizer_compare_request")
class TokenizerCompareRequest(Message):
    tokenizers: list = field(default_factory=list)  # ids or names; the first one's dataset is the corpus
    text: str | None = None  # None: the corpus sample's first line


@message("tokenizer_compare_reply")
class TokenizerCompareReply(Reply):
    # engine.tokenizer.analysis.compare_tokenizers: {"corpus", "text", "rows": [{"tokenizer", "id", "kind",
    # "vocab_size", "n_tokens", "bytes_per_token", "tokens_per_word", "unk_rate", "vocab_coverage", "lossless",
    # "sample_split"}]}
    result: dict = field(default_factory=dict)


@message("tokenizer_export_request")
class TokenizerExportRequest(Message):
    """path ending in .json: the tokenizer.json alone; otherwise a folder transformers' AutoTokenizer loads."""

    tokenizer: int | str = 0
    path: str = ""


@message("tokenizer_export_reply")
class TokenizerExportReply(Reply):
    path: str = ""


# ------------------------------------------------------------------------------------------------- training


@message("train_request")
class TrainRequest(Message):
    """Start a run from a RunConfig dict, or resume run `resume_run` from its latest checkpoint."""

    config: dict = field(default_factory=dict)
    name: str | None = None
    resume_run: int | None = None


@message("train_reply")
class TrainReply(Reply):
    """Sent when the run has started (or could not start); progress follows as status/metrics/eval broadcasts."""

    run: dict = field(default_factory=dict)


@message("control_request")
class ControlRequest(Message):
    """Handled between training steps, apart from long work: Stop answers within one step.

    action: "stop" | "pause" | "resume" (the running training), "apply_advice" (1.9: resume a run paused by the
    health guard with the settings its Status's `advice` suggests), or "cancel" (the job started by request
    `target`: an import, tokenizer training or generation)."""

    action: ControlAction = "stop"
    target: str | None = None


@message("control_reply")
class ControlReply(Reply):
    action: str = ""


@message("metrics_request")
class MetricsRequest(Message):
    run: int | str = 0


@message("metrics_reply")
class MetricsReply(Reply):
    run: dict = field(default_factory=dict)
    rows: list = field(default_factory=list)  # Workspace.metrics rows: {"step", "split", "loss", "lr", ...}


# ----------------------------------------------------------------------------------------------- generation


@message("generate_request")
class GenerateRequest(Message):
    """Streams one `token` per generated token (parent = this request), then the reply. Greedy and sample stream
    as they go; beam search streams its best sequence when the search is done. Every mode ends early at the
    token that ends documents in the training data (the tokenizer's eos, else sep; never sent). A token that ends inside a character has text "" and its character
    comes with a later token; the texts join to the reply's text."""

    run: int | str = 0
    checkpoint: str | None = None  # a checkpoint name of the run (see checkpoints_request); None = latest
    prompt: str = ""
    max_new_tokens: int = 200
    mode: str = "sample"  # sample | greedy | beam
    temperature: float = 0.8
    top_k: int | None = 40
    top_p: float | None = None
    seed: int | None = None
    beam_width: int = 4
    length_penalty: float = 1.0
    details: bool = False  # send prob / entropy / top alternatives with each token


@message("generate_reply")
class GenerateReply(Reply):
    text: str = ""  # the generated continuation (without the prompt)
    n_tokens: int = 0
    tokens_per_sec: float = 0.0
    stopped: bool = False  # True when cancelled before max_new_tokens
    ended: bool = False  # True when the model wrote its end-of-text token (the document is finished)
    # [{"id", "text"}] of the prompt the model saw: its last block_size tokens (an empty prompt starts from a
    # newline token); prompt ids + token_ids is the sequence that token_attention_request positions index
    prompt_tokens: list = field(default_factory=list)
    token_ids: list = field(default_factory=list)  # generated ids, in order
    # The prompt's characters the model's vocabulary lacks (each reads as [UNK]), each once, in order; added
    # in protocol 1.3 (an older engine leaves it empty)
    unknown_chars: list = field(default_factory=list)


@message("checkpoints_request")
class CheckpointsRequest(Message):
    run: int | str = 0


@message("checkpoints_reply")
class CheckpointsReply(Reply):
    rows: list = field(default_factory=list)  # [{"name", "step", "val_loss", "path", "created"}], oldest first


# ------------------------------------------------------------------------------------------------ attention


@message("attention_request")
class AttentionRequest(Message):
    """A stored snapshot of run `run` (step None = the latest), or, with `text`, attention computed now for that
    text on a checkpoint (None = latest). The reply carries the float16 arrays in `buffers`, described by `meta`."""

    run: int | str = 0
    step: int | None = None
    text: str | None = None
    checkpoint: str | None = None
    max_tokens: int = 128
    # (1.6) encoder-decoder runs: the text the decoder reads (its target side) for cross-attention; None = the
    # model's own greedy output for `text`
    target: str | None = None


@message("attention_reply")
class AttentionReply(Reply):
    run: int = 0
    step: int = 0
    meta: dict = field(
        default_factory=dict
    )  # engine.attention_probes.encode_snapshot meta (probes, tokens, shapes, labels)
    steps: list = field(default_factory=list)  # every stored snapshot step of the run, for the time slider


@message("token_attention_request")
class TokenAttentionRequest(Message):
    """The attention row of one position of a token sequence, for every layer and head (playground clicks)."""

    run: int | str = 0
    checkpoint: str | None = None
    ids: list = field(default_factory=list)
    position: int = 0


@message("token_attention_reply")
class TokenAttentionReply(Reply):
    tokens: list = field(default_factory=list)  # display strings of the keys (ids[:position+1], maybe cropped)
    shape: list = field(default_factory=list)  # [n_layer, n_head, n_keys]; buffers[0] is float16 little-endian


# ------------------------------------------------------------------------------- objectives and playground


@message("sample_batch_request")
class SampleBatchRequest(Message):
    """(1.6) A real batch of the dataset as `config`'s objective builds it, as text: what the model sees."""

    config: dict = field(default_factory=dict)  # a RunConfig dict; data.dataset names the dataset
    n: int = 4  # sequences
    seed: int = 0  # "Another sample" asks with another seed
    max_tokens: int = 48  # each sequence is cut to this many tokens for display


@message("sample_batch_reply")
class SampleBatchReply(Reply):
    objective: str = ""
    # engine.objectives.base.Objective.describe: [{"input": [span], "target": [span] | None, "label": str | None}]
    # with span {"text", "mark", "loss", "order"}; mark is kept | masked | random | unchanged | sentinel |
    # deleted | moved | prefix | special | pad
    rows: list = field(default_factory=list)
    note: str = ""  # e.g. that the vocabulary will get the special tokens the objective needs when it trains


@message("fill_mask_request")
class FillMaskRequest(Message):
    """(1.6) The top candidates for every [MASK] of `text` (a masked-LM run)."""

    run: int | str = 0
    checkpoint: str | None = None
    text: str = ""
    top_k: int = 5


@message("fill_mask_reply")
class FillMaskReply(Reply):
    # one per mask, left to right: {"position": token index, "candidates": [[text, prob], ...]}
    masks: list = field(default_factory=list)
    text: str = ""  # the text with every mask replaced by its best candidate
    tokens: list = field(default_factory=list)  # display strings of the tokens the model read


@message("infill_request")
class InfillRequest(Message):
    """(1.6) Fill the gaps between `segments` (text, gap, text, gap, ..., text): span corruption runs write
    each gap after its sentinel, fill-in-the-middle decoders after prefix and suffix, masked-LM runs fill
    `gap_tokens` masks per gap."""

    run: int | str = 0
    checkpoint: str | None = None
    segments: list = field(default_factory=list)
    max_new_tokens: int = 32  # per gap
    gap_tokens: int = 3
    mode: str = "greedy"  # greedy | sample
    temperature: float = 0.8
    seed: int | None = None


@message("infill_reply")
class InfillReply(Reply):
    fills: list = field(default_factory=list)  # one text per gap
    text: str = ""  # the segments joined by their fills


@message("score_pair_request")
class ScorePairRequest(Message):
    """(1.6) How likely B follows A (NSP) or A and B are in order (SOP), by a run trained with a pair task."""

    run: int | str = 0
    checkpoint: str | None = None
    a: str = ""
    b: str = ""


@message("score_pair_reply")
class ScorePairReply(Reply):
    task: str = ""  # "nsp" | "sop"
    prob: float = 0.0  # P(B follows A) for nsp, P(in order) for sop
    words: str = ""  # the answer in a sentence


@message("classify_request")
class ClassifyRequest(Message):
    """(1.7) Each class's probability for a text, by a run trained with the classification objective."""

    run: int | str = 0
    checkpoint: str | None = None
    text: str = ""


@message("classify_reply")
class ClassifyReply(Reply):
    classes: list = field(default_factory=list)  # [[class name, probability], ...], the likeliest first
    label: str = ""  # the likeliest class
    n_tokens: int = 0  # tokens the model read
    cut: bool = False  # the text was longer than the model's context and was cut


# ---------------------------------------------------------------------------------------------- broadcasts


@message("status")
class Status(Message):
    """The engine's state and, when the message is about a run, that run's (RunState, then RunOutcome once it
    ended). `state` is the 1.4 field that carried either one; it is still sent, as before, for older studios."""

    state: EngineState | RunState | RunOutcome = "idle"
    run: int | None = None
    step: int = 0
    max_iters: int = 0
    message: str = ""
    # (1.5) The engine process's own state: a training run, paused or not, holds the work lane, so it is "busy".
    # None only in a Status from an older engine, which `status_states` then reads from `state`.
    engine_state: EngineState | None = None
    run_state: RunState | RunOutcome | None = None  # (1.5) the run's; None when the message is about the engine
    # (1.9) With run_state "paused" by the health guard: {"text", "changes" {config key: value}, "change_words",
    # "rolled_back_to"}; ControlRequest "apply_advice" resumes with the changes, "resume" without them.
    advice: dict | None = None


def status_states(msg: Status) -> tuple[EngineState | None, RunState | RunOutcome | None]:
    """The engine's state and the run's (None when the Status is not about a run) in any Status.

    A 1.5 engine sends both; from an older one (engine_state None) they are read from its single `state`: a run
    in progress keeps the engine busy, "stopped" is a run's outcome only with `run` set (else the engine exiting),
    and a word this side does not know gives (None, None)."""
    if msg.engine_state is not None:
        return msg.engine_state, msg.run_state
    state = msg.state
    if state in RUN_STATES or (state in RUN_OUTCOMES and msg.run is not None):
        return "busy", cast("RunState | RunOutcome", state)
    if state in ENGINE_STATES:
        return cast(EngineState, state), None
    return None, None


@message("metrics")
class Metrics(Message):
    """Training rows since the last metrics message: {"step", "loss", "lr", "grad_norm", "tokens_per_sec",
    "elapsed_s", "eta_s"}."""

    run: int = 0
    rows: list = field(default_factory=list)


@message("eval")
class Eval(Message):
    run: int = 0
    step: int = 0
    train_loss: float = 0.0
    val_loss: float | None = None
    elapsed_s: float = 0.0
    # (1.6) the objective's metrics on both splits: {"train_perplexity", "val_perplexity", "val_masked_accuracy",
    # ...}, keys "<split>_<engine.objectives.catalog METRIC_LABELS key>"
    metrics: dict = field(default_factory=dict)


@message("token")
class Token(Message):
    """One generated token, streamed while a generate_request runs (parent = the request id)."""

    token_id: int = 0
    text: str = ""
    prob: float | None = None  # with details: probability of this token under the model (temperature 1)
    entropy: float | None = None  # nats, of the model's next-token distribution at this position
    top: list = field(default_factory=list)  # [[token display text, prob], ...] the top alternatives


@message("attention")
class Attention(Message):
    """A new attention snapshot of a training run (at step 0 and at each evaluation); arrays in `buffers`.

    Stored too (run_dir/attention/step-NNNNNNNN.npz), so it may be dropped when the studio lags: ask for it with
    attention_request. meta (the same in attention_reply; engine.attention_probes.encode_snapshot):
        format      1 (the snapshot format)
        step        the training step
        dtype       "<f2": buffers hold little-endian float16
        source      "training" (a probe during training) or "text" (attention_request with text)
        checkpoint  the checkpoint name the text was read with (None for training snapshots)
        probes      one per buffer, in order: {"kind": "text" | "induction", "text", "tokens" (display strings
                    of the keys, left to right), "ids", "n_dropped" (tokens cut from the start),
                    "chars_cut" (characters cut before tokenizing), "shape": [L, H, T, T], "layout": "tril"
                    (the T * (T + 1) / 2 lower-triangle values per head, row by row, as np.tril_indices) or
                    "full" (T * T per head), "nbytes"}; rows are queries, columns keys, each row sums to 1
        heads       {"scores": {pattern: [L][H] floats 0..1}, "labels": [L][H] of {"label", "score",
                    "explanation", "scores"}}; patterns: previous-token, first-token, self, local, induction
                    (induction only when the induction probe is there), labels add "mixed"
    """

    run: int = 0
    step: int = 0
    meta: dict = field(default_factory=dict)


@message("progress")
class Progress(Message):
    """Progress of a long job (parent = the request id): fraction 0..1, or -1 when unknown."""

    fraction: float = 0.0
    message: str = ""


@message("log")
class Log(Message):
    level: str = "info"  # info | warning | error
    message: str = ""


@message("heartbeat")
class Heartbeat(Message):
    state: str = "idle"
    time: float = 0.0


# ------------------------------------------------------------------------------------------ encode / decode


class ProtocolError(Exception):
    pass


def major(version: str) -> int:
    return int(str(version).split(".", 1)[0])


# Requests added after 1.0, with the version that added them: a peer older than that would ignore them, so the
# sender refuses them at once with a readable error instead (see `too_old_for`).
REQUESTS_SINCE = {"rename_request": "1.3", "ping_request": "1.10", "detach_request": "1.10"}


def too_old_for(kind: str, peer_version: str) -> bool:
    """Whether a peer speaking `peer_version` predates request `kind`."""
    since = REQUESTS_SINCE.get(kind)
    if since is None:
        return False
    try:
        return tuple(int(x) for x in peer_version.split(".")[:2]) < tuple(int(x) for x in since.split("."))
    except ValueError:
        return False


def compatible(version: str) -> bool:
    try:
        return major(version) == major(PROTOCOL_VERSION)
    except ValueError:
        return False


def encode_batch(msgs: list[Message]) -> bytes:
    dicts: list[dict[str, Any]] = []
    blobs: list[Any] = []
    for m in msgs:
        d = m.to_dict()
        if m.buffers:
            d["buffers"] = [len(b) for b in m.buffers]
            blobs.extend(m.buffers)
        dicts.append(d)
    header = json.dumps({"v": PROTOCOL_VERSION, "msgs": dicts}, separators=(",", ":"), allow_nan=True).encode("utf-8")
    if not blobs:
        return header
    return b"".join([BINARY_MAGIC, struct.pack(">I", len(header)), header, *(bytes(b) for b in blobs)])


def decode_message(d: dict[str, Any], buffers: tuple = ()) -> Message:
    kind = str(d.get("kind"))
    cls = _REGISTRY.get(kind)
    if cls is None:
        return Unknown(id=str(d.get("id", "")), parent=d.get("parent"), kind_name=str(kind), data=d)
    names = {f.name for f in dataclasses.fields(cls)} - {"buffers"}
    return cls(buffers=buffers, **{k: v for k, v in d.items() if k in names})


# The largest frame either side reads (a length prefix above it closes the connection: a byte stream cannot be
# resynchronised). The biggest real ones are attention snapshots of a few MiB.
MAX_FRAME_BYTES = 256 << 20


def decode_batch(data: bytes) -> list[Message]:
    try:
        blob: bytes | memoryview = b""
        if data[:4] == BINARY_MAGIC:
            (n,) = struct.unpack(">I", data[4:8])
            blob = memoryview(data)[8 + n :]
            data = data[8 : 8 + n]
        frame = json.loads(data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else bytes(data))
        if not isinstance(frame, dict) or not isinstance(frame.get("msgs"), list):
            raise ValueError("frame without msgs")
        if not compatible(frame.get("v", "")):
            raise ProtocolError(f"peer speaks protocol {frame.get('v')}, this side {PROTOCOL_VERSION}")
        out, pos = [], 0
        for m in frame["msgs"]:
            if not isinstance(m, dict):
                continue
            bufs = []
            for length in m.pop("buffers", None) or []:
                if pos + int(length) > len(blob):
                    raise ValueError("buffer lengths exceed the frame")
                bufs.append(bytes(blob[pos : pos + int(length)]))
                pos += int(length)
            out.append(decode_message(m, tuple(bufs)))
        return out
    except ProtocolError:
        raise
    except RecursionError:
        raise ProtocolError("malformed frame: JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError, struct.error, TypeError, AttributeError, KeyError, MemoryError) as e:
        raise ProtocolError(f"malformed frame: {type(e).__name__}: {e}") from None


@dataclass(frozen=True, kw_only=True)
class ForeignReply(Reply):
    """An error reply to a request of a kind this side does not know (a newer peer's). It goes out under the reply
    kind the peer expects, so the peer's request ends with a readable error instead of waiting forever."""

    reply_kind: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["kind"] = d.pop("reply_kind")
        return d


def error_reply(request: Message, error: str, *, field: str | None = None, fields=()) -> Reply | Log:
    """The matching `<action>_reply` with status error, or a log message if the request kind has no reply.

    `field` and `fields` name the config fields the error is about (engine.errors.UserError)."""
    named = list(dict.fromkeys([*([field] if field else []), *fields]))
    if isinstance(request, Unknown):
        if request.kind_name.endswith("_request"):
            return ForeignReply(
                parent=request.id,
                status="error",
                error=error,
                field=field,
                fields=named,
                reply_kind=request.kind_name[: -len("_request")] + "_reply",
            )
        return Log(parent=request.id, level="error", message=error)
    reply_kind = request.kind.replace("_request", "_reply")
    cls = _REGISTRY.get(reply_kind)
    if cls is None or not issubclass(cls, Reply):
        return Log(parent=request.id, level="error", message=error)
    return cls(parent=request.id, status="error", error=error, field=field, fields=named)
