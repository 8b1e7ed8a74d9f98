"""The engine's request handlers for the playground's modes beyond generation: fill-mask, infilling and pair
scores (a mixin of engine.worker.Engine; generation and text to text are worker_models' generate_request).

Each reads a checkpoint and answers on the read-only side lane, as generation does, so it never waits for a
training run. Engine (engine/worker.py) finds each by its name, `_handle_<kind>`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine import protocol as p

if TYPE_CHECKING:
    from engine.worker import Job


class PlaygroundHandlers:
    """fill_mask_request, infill_request, score_pair_request and classify_request; uses Engine's ws(), send() and _enqueue()."""

    def _handle_fill_mask_request(self, msg: p.FillMaskRequest) -> None:
        def run(job: Job) -> None:
            from engine.playground_infer import fill_mask

            out = fill_mask(self.ws(), msg.run, msg.text, msg.top_k, msg.checkpoint)
            self.send(p.FillMaskReply(parent=msg.id, masks=out["masks"], text=out["text"], tokens=out["tokens"]))

        self._enqueue(msg, run, read_only=True)

    def _handle_infill_request(self, msg: p.InfillRequest) -> None:
        def run(job: Job) -> None:
            from engine.playground_infer import infill

            out = infill(
                self.ws(),
                msg.run,
                list(msg.segments),
                max_new_tokens=msg.max_new_tokens,
                gap_tokens=msg.gap_tokens,
                mode=msg.mode,
                temperature=msg.temperature,
                seed=msg.seed,
                checkpoint=msg.checkpoint,
            )
            self.send(p.InfillReply(parent=msg.id, fills=out["fills"], text=out["text"]))

        self._enqueue(msg, run, read_only=True)

    def _handle_score_pair_request(self, msg: p.ScorePairRequest) -> None:
        def run(job: Job) -> None:
            from engine.playground_infer import score_pair

            out = score_pair(self.ws(), msg.run, msg.a, msg.b, msg.checkpoint)
            self.send(p.ScorePairReply(parent=msg.id, task=out["task"], prob=out["prob"], words=out["words"]))

        self._enqueue(msg, run, read_only=True)

    def _handle_classify_request(self, msg: p.ClassifyRequest) -> None:
        def run(job: Job) -> None:
            from engine.infer_classify import classify

            out = classify(self.ws(), msg.run, msg.text, msg.checkpoint)
            self.send(
                p.ClassifyReply(
                    parent=msg.id, classes=out["classes"], label=out["label"], n_tokens=out["n_tokens"], cut=out["cut"]
                )
            )

        self._enqueue(msg, run, read_only=True)
