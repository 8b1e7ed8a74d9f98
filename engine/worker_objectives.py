"""The engine's request handlers for objectives (a mixin of engine.worker.Engine): the sample batch, what a config's
objective makes of the user's text.

A sample batch reads a few windows of a token file and builds one small batch on the CPU (a tenth of a second), so
it is answered on the reader thread as tokenizing a text is: the Objective panel redraws it as options change,
and neither a training run (main lane) nor a long generation (side lane) may hold it up. Engine
(engine/worker.py) finds the handler by its name, `_handle_<kind>`; an error (ConfigError in the panels' words)
becomes the request's error reply there.
"""

from __future__ import annotations

from engine import protocol as p
from engine.config import RunConfig


class ObjectiveHandlers:
    """Requests about objectives; uses Engine's ws() and send()."""

    def _handle_sample_batch_request(self, msg: p.SampleBatchRequest) -> None:
        from engine.objectives.sample_view import sample_batch

        cfg = RunConfig.from_dict(msg.config or {})
        shown = sample_batch(self.ws(), cfg, n=int(msg.n), seed=int(msg.seed), max_tokens=int(msg.max_tokens))
        self.send(
            p.SampleBatchReply(parent=msg.id, objective=shown["objective"], rows=shown["rows"], note=shown["note"])
        )
