"""The curves of one run as the Train panel draws them (Qt-free, so they are tested without a window): the loss on
both splits, the learning rate, the gradient norm, and the objective's own metrics at each evaluation."""

from __future__ import annotations

import math


class RunCurves:
    """Buffered curves of one run (no Qt): live rows are appended, a metrics reply fills in the history."""

    def __init__(self, run_id: int | None = None):
        self.run_id = run_id
        self.steps: list[int] = []
        self.loss: list[float] = []
        self.lr: list[float] = []
        self.grad_norm: list[float] = []
        self.val_steps: list[int] = []
        self.val_loss: list[float] = []
        self.last: dict = {}
        self.last_val: float | None = None
        # The objective's metrics at each evaluation, by "<split>_<metric>" (e.g. "val_masked_accuracy"):
        # (steps, values); last_metrics holds the latest value of each.
        self.metrics: dict[str, tuple[list[int], list[float]]] = {}
        self.last_metrics: dict[str, float] = {}
        # A classification run's latest validation confusion matrix (rows: true class) and its step.
        self.confusion: list[list[int]] | None = None
        self.confusion_step: int | None = None
        # A REINFORCE run's latest evaluation samples ({"prompt", "text", "reward"} each) and their step.
        self.samples: list[dict] = []
        self.samples_step: int | None = None

    def add_rows(self, rows: list[dict]) -> None:
        for r in rows:
            split = r.get("split", "train")
            if isinstance(r.get("metrics"), dict) and r["metrics"]:
                self.add_metrics(int(r["step"]), r["metrics"])
            elif split == "val" and r.get("loss") is not None:
                # A row from before metrics were kept (protocol 1.6) is a causal LM's, whose perplexity is
                # e to its loss: the card shows it instead of a dash.
                self.add_metrics(int(r["step"]), {"val_perplexity": math.exp(min(float(r["loss"]), 700.0))})
            if split == "val":
                self.add_eval(int(r["step"]), r.get("val_loss", r.get("loss")))
                continue
            if split != "train" or r.get("loss") is None:
                continue
            step = int(r["step"])
            if self.steps and step <= self.steps[-1]:
                continue  # already have it (a live row that the history also holds)
            self.steps.append(step)
            self.loss.append(float(r["loss"]))
            self.lr.append(float(r.get("lr") or 0.0))
            self.grad_norm.append(float(r.get("grad_norm") or 0.0))
            self.last = dict(r)

    def add_eval(self, step: int, val_loss, metrics: dict | None = None) -> None:
        if metrics:
            self.add_metrics(step, metrics)
        if val_loss is None:
            return
        if self.val_steps and step <= self.val_steps[-1]:
            if step == self.val_steps[-1]:
                self.val_loss[-1] = float(val_loss)
            return
        self.val_steps.append(step)
        self.val_loss.append(float(val_loss))
        self.last_val = float(val_loss)

    def add_metrics(self, step: int, metrics: dict) -> None:
        """An evaluation's metrics ({"val_perplexity": 5.1, ...}); a step already held is updated, not repeated."""
        for key, value in metrics.items():
            if key == "val_confusion" and isinstance(value, list):
                if self.confusion_step is None or step >= self.confusion_step:
                    self.confusion, self.confusion_step = value, step
                continue
            if key == "val_samples" and isinstance(value, list):
                if self.samples_step is None or step >= self.samples_step:
                    self.samples, self.samples_step = value, step
                continue
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            steps, values = self.metrics.setdefault(str(key), ([], []))
            if steps and step <= steps[-1]:
                if step == steps[-1]:
                    values[-1] = float(value)
                    self.last_metrics[str(key)] = float(value)
                continue
            steps.append(step)
            values.append(float(value))
            self.last_metrics[str(key)] = float(value)

    def metric_names(self) -> list[str]:
        """The metrics this run has values for ("masked_accuracy", ...), without the split, in first-seen order."""
        names: list[str] = []
        for key in self.metrics:
            name = key.split("_", 1)[1] if key.split("_", 1)[0] in ("train", "val") else key
            if name not in names:
                names.append(name)
        return names

    def merge_history(self, rows: list[dict]) -> None:
        """History from the store first, then the live rows that came after it."""
        live = RunCurves(self.run_id)
        live.__dict__.update({k: list(v) if isinstance(v, list) else v for k, v in self.__dict__.items()})
        self.__init__(self.run_id)
        self.add_rows(sorted(rows, key=lambda r: (int(r.get("step", 0)), r.get("split") == "val")))
        for i, step in enumerate(live.steps):
            self.add_rows([{"step": step, "loss": live.loss[i], "lr": live.lr[i], "grad_norm": live.grad_norm[i]}])
        if live.last and live.steps and self.steps and live.steps[-1] == self.steps[-1]:
            self.last = live.last
        for step, val in zip(live.val_steps, live.val_loss):
            self.add_eval(step, val)
        for key, (steps, values) in live.metrics.items():
            for step, value in zip(steps, values):
                self.add_metrics(step, {key: value})
        if live.confusion is not None:
            self.add_metrics(int(live.confusion_step or 0), {"val_confusion": live.confusion})
        if live.samples:
            self.add_metrics(int(live.samples_step or 0), {"val_samples": live.samples})
