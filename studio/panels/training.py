"""Train: start, pause, stop and resume runs, and watch their curves live.

The panel composes the run summary, the controls, the cards of big numbers (studio/widgets/train_cards.py) and
the plots (studio/widgets/loss_plot.py), with a card per metric of the run's objective and a plot per accuracy;
the curves are studio/state/curves.py's RunCurves and what the panel says about a run is
studio/state/train_summary.py's, both tested without a window."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from engine import protocol as p
from engine.config import ConfigError, RunConfig, user_message
from engine.format import fmt_grad, fmt_loss, fmt_lr, fmt_speed, human_duration
from studio import theme
from studio.coverage import coverage_warning
from studio.run_names import run_status, run_title
from studio.run_watch import trained_elsewhere
from studio.state.curves import RunCurves
from studio.state.model_form import ASSUMED_CHAR_VOCAB
from studio.state.train_summary import (
    config_differences,
    config_html,
    differs_text,
    loss_over_text,
    run_metrics,
    status_text,
)
from studio.widgets.divergence_banner import DivergenceBanner
from studio.widgets.form_helpers import MessageLine, PanelHeader, open_warning
from studio.widgets.evaluation_views import EvaluationViews
from studio.widgets.parent_curves import load_parent_curves
from studio.widgets.loss_plot import LossPlot, small_plot
from studio.widgets.train_cards import MetricCards, stat_cards

REDRAW_MS = 33  # ~30 Hz: data arrives in bursts, the plot redraws at most this often
_LIVE = ("starting", "training", "paused", "stopping")


class TrainingPanel(QWidget):
    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.curves = RunCurves()
        self._train_request: str | None = None
        self._metrics_request: str | None = None
        self._status: p.Status | None = None
        self._max_iters = 0
        self._start_when_ready = False  # Train was pressed while the engine was still starting
        self._following: int | None = None  # the run trained elsewhere whose curves are reloaded
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(REDRAW_MS)
        self._redraw_timer.timeout.connect(self.redraw)
        self._build()
        session.configChanged.connect(self._update_summary)
        session.datasetSelected.connect(self._update_summary)
        session.tokenizerSelected.connect(self._update_summary)
        session.workspaceChanged.connect(self._on_workspace)
        session.runSelected.connect(self._on_run_selected)
        session.runUpdated.connect(self._on_run_updated)
        session.metricsReceived.connect(self._on_metrics)
        session.evalReceived.connect(self._on_eval)
        session.statusReceived.connect(self._on_status)
        session.engineStateChanged.connect(self._on_engine_state)
        self._update_summary()
        if session.run is not None:
            self._on_run_selected(session.run)
        self._update_buttons()

    # --------------------------------------------------------------------------------------------------- build
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.addWidget(
            PanelHeader(
                "Train",
                "Train the model on your data and watch it learn: the loss is how surprised the model is "
                "by the next token, so lower is better.",
            )
        )
        root.addWidget(self._build_summary())
        root.addLayout(self._build_controls())
        self.state_label = theme.description_label("")
        self.error_label = MessageLine()
        self.divergence = DivergenceBanner()
        self.divergence.applyClicked.connect(lambda: self.session.control("apply_advice"))
        for widget in (self.state_label, self.error_label, self.divergence):
            root.addWidget(widget)
        grid, self.cards = stat_cards()
        root.addLayout(grid)
        self.metric_cards = MetricCards(grid)
        self._build_plots(root)
        for seq in ("Esc", "Ctrl+."):
            sc = QShortcut(QKeySequence(seq), self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(self.stop_training)

    def _build_summary(self) -> QFrame:
        """The shown run's caption and settings, and a warning about a vocabulary that leaves text unknown."""
        self.run_caption = QLabel()
        self.run_caption.setTextFormat(Qt.TextFormat.RichText)
        self.run_caption.setToolTip("The run whose curves and numbers are shown below. Pick another in the Runs panel.")
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setToolTip(
            "The shown run's settings, and what Train starts when your settings differ. Change "
            "them in the Data, Vocabulary, Model and Objective panels."
        )
        frame = QFrame()
        frame.setFrameShape(QFrame.Shape.StyledPanel)
        fl = QVBoxLayout(frame)
        fl.setContentsMargins(10, 6, 10, 6)
        fl.addWidget(self.run_caption)
        fl.addWidget(self.summary)
        self.coverage_label = MessageLine()
        self.coverage_label.setToolTip(
            "Tokens the vocabulary cannot spell become the unknown token: the model "
            "then learns and writes [UNK] for them. Train a larger vocabulary in the "
            "Vocabulary panel."
        )
        fl.addWidget(self.coverage_label)
        return frame

    def _build_controls(self) -> QHBoxLayout:
        """Train, Pause, Stop and Resume run, and the progress bar."""
        controls = QHBoxLayout()
        self.train_button = theme.make_primary(QPushButton("▶  Train"))
        self.train_button.setToolTip(
            "Start a new run with your current settings (Ctrl+Return, from any panel). If "
            "no vocabulary is chosen, one is trained on the dataset first. Pressed while "
            "the engine is still starting, the run starts as soon as it is ready."
        )
        self.train_button.clicked.connect(self.start_training)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Pause the run between two steps (nothing is lost); press again to resume.")
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button = QPushButton("■  Stop")
        self.stop_button.setToolTip(
            "Stop the run after the current step and save a checkpoint (Esc or Ctrl+.). "
            "A stopped run can be resumed later."
        )
        self.stop_button.clicked.connect(self.stop_training)
        self.resume_button = QPushButton("Resume run")
        self.resume_button.setToolTip("Continue the selected stopped or interrupted run from its last checkpoint.")
        self.resume_button.clicked.connect(self.resume_selected)
        for b in (self.train_button, self.pause_button, self.stop_button, self.resume_button):
            controls.addWidget(b)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.progress.setToolTip("Steps done out of the run's Training steps, and the estimated time left.")
        self.progress.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        controls.addWidget(self.progress, 1)
        return controls

    def _build_plots(self, root: QVBoxLayout) -> None:
        """The loss plot, and under it the learning rate and the gradient norm."""
        self.loss_plot = LossPlot()
        self.train_curve = self.loss_plot.train_curve
        self.val_curve = self.loss_plot.val_curve
        self.train_curve.setClipToView(True)
        self.train_curve.setDownsampling(auto=True, method="mean")
        top = QHBoxLayout()  # the loss, and beside it a REINFORCE run's samples
        top.addWidget(self.loss_plot, 3)
        root.addLayout(top, 3)
        small = QHBoxLayout()
        self.lr_plot = small_plot("learning rate", "learning rate", theme.LR_COLOR)
        self.lr_plot.setToolTip("The learning rate schedule: a short warm-up, then a slow decay.")
        self.grad_plot = small_plot("grad norm", "grad norm", theme.GRAD_COLOR)
        self.grad_plot.setToolTip("Gradient norm per step (before clipping).")
        self.lr_curve = self.lr_plot.curves["learning rate"]
        self.grad_curve = self.grad_plot.curves["grad norm"]
        small.addWidget(self.lr_plot, 1)
        small.addWidget(self.grad_plot, 1)
        self.small_plots = small
        self.evaluation = EvaluationViews(small)
        # The names the tests and the screenshots reach them by.
        self.metric_plots, self.confusion_view = self.evaluation.plots, self.evaluation.confusion
        root.addLayout(small, 1)
        self.samples_view = self.evaluation.samples
        top.addWidget(self.samples_view, 2)

    # ------------------------------------------------------------------------------------------------ summary
    def _update_summary(self, *_):
        """The shown run's caption and settings; when your current settings differ, what Train would start; and
        a warning before training on a vocabulary that leaves much of the text unknown."""
        self._update_run_summary()
        self._schedule()  # the objective's metric cards follow the shown run's objective (or your settings')
        warning = coverage_warning(self.session.tokenizer, self.session.dataset)
        self.coverage_label.show_message(f"⚠ {warning}" if warning else "", "warning")

    def _update_run_summary(self) -> None:
        s = self.session
        run = self.shown_run()
        if run is None:
            self.run_caption.setText("<b>New run</b> · press Train to start it")
            self.summary.setText(self._config_html(s.config, s.dataset, s.tokenizer))
            return
        self.run_caption.setText(f"<b>{escape(run_title(run))}</b> · {escape(run_status(run))}")
        if not run.get("config"):
            self.summary.setText(self._config_html(s.config, s.dataset, s.tokenizer))
            return
        try:
            cfg = RunConfig.from_dict(run.get("config") or {})
        except (ConfigError, TypeError, ValueError, KeyError):
            self.summary.setText(self._config_html(s.config, s.dataset, s.tokenizer))
            return
        dataset = s.find("datasets", cfg.data.dataset)
        tokenizer = s.find("tokenizers", run.get("tokenizer_id") or cfg.tokenizer.tokenizer)
        text = self._config_html(cfg, dataset, tokenizer)
        changed = config_differences(cfg, s.config)
        if changed:
            text += (
                f"<br><i>Train starts a new run with your current settings</i> (they differ in "
                f"{escape(differs_text(changed))}): " + self._config_html(s.config, s.dataset, s.tokenizer, short=True)
            )
        self.summary.setText(text)

    def _config_html(self, cfg: RunConfig, dataset, tokenizer, short: bool = False) -> str:
        # Before a tokenizer exists, the form's own estimate; an older run's config gets the fair guess.
        fallback = self.session.estimated_vocab_size()[0] if cfg is self.session.config else ASSUMED_CHAR_VOCAB
        return config_html(cfg, dataset, tokenizer, fallback, short)

    def shown_run(self) -> dict | None:
        """The workspace row of the run whose curves are shown (None before any run)."""
        if self.curves.run_id is None:
            return None
        return self.session.find("runs", self.curves.run_id) or (
            self.session.run if (self.session.run or {}).get("id") == self.curves.run_id else {"id": self.curves.run_id}
        )

    # ------------------------------------------------------------------------------------------------ actions
    def start_training(self) -> None:
        """Train (the button, or Ctrl+Return from any panel). Before the engine is ready, the run starts once it is."""
        if self._train_request is not None or self._live() or self.session.is_training:
            return
        if self.session.hello is None and self.session.client.state == "starting":
            self._start_when_ready = True
            self.state_label.setText("Training starts as soon as the engine is ready…")
            self.progress.setRange(0, 0)
            self._update_buttons()
            return
        self._start_when_ready = False
        self.start_config(self.session.config)

    def start_config(self, cfg: RunConfig) -> None:
        """Start a run of `cfg` (Train: the panels' settings; Runs → Fine-tune…: a run from another's weights)."""
        if self._train_request is not None or self._live() or self.session.is_training:
            self._show_error("A run is training: stop it before starting another", dialog=True)
            return
        try:
            cfg.validate()
        except ConfigError as e:
            self.progress.setRange(0, 1000)
            self.state_label.setText("")
            self._show_error(e, dialog=True)
            self._update_buttons()
            return
        self._clear_error()
        self.state_label.setText("Preparing the run…")
        self.progress.setRange(0, 0)  # busy until the run starts (the vocabulary may be trained first)
        self._send_train(p.TrainRequest(config=cfg.to_dict()))

    def resume_selected(self) -> None:
        run = self.session.run
        if run is None:
            return
        self._clear_error()
        self.state_label.setText(f"Resuming run {run['id']}…")
        self._send_train(p.TrainRequest(resume_run=run["id"]))

    def _send_train(self, msg: p.TrainRequest) -> None:
        # The id is kept and the panel shows "busy" before sending: the Session may answer at once (the engine has
        # just stopped or died), and that answer must find the request it ends and have the last word.
        self._train_request = msg.id
        self.session.request(msg, self._on_train_reply, self._on_train_event)
        self._update_buttons()

    def toggle_pause(self) -> None:
        self.session.control("resume" if self._run_state() == "paused" else "pause")

    def stop_training(self) -> None:
        if self._start_when_ready:
            self._start_when_ready = False
            self.progress.setRange(0, 1000)
            self.state_label.setText("")
            self._update_buttons()
        elif self._train_request is not None:
            self.session.cancel(self._train_request)  # still preparing (e.g. training the vocabulary)
        elif self._live():
            self.session.control("stop")
            self.state_label.setText("Stopping after this step and saving a checkpoint…")

    def _on_train_event(self, msg) -> None:
        if isinstance(msg, p.Progress) and self._train_request is not None:
            if msg.fraction >= 0:
                self.progress.setRange(0, 1000)
                self.progress.setValue(int(msg.fraction * 1000))
            if msg.message:
                self.state_label.setText(msg.message)

    def _on_train_reply(self, reply) -> None:
        self._train_request = None
        self.progress.setRange(0, 1000)
        if not reply.ok:
            self.state_label.setText("")
            text, key = user_message(reply.error or "")
            self._show_error(f"Training could not start: {text}", dialog=True, key=key)
        else:
            run = reply.run or {}
            self._max_iters = int(run.get("max_iters") or 0)
            self.state_label.setText(f"Run {run.get('id')} started.")
        self._update_buttons()

    # ----------------------------------------------------------------------------------------------- incoming
    def _on_engine_state(self, state: str, detail: str) -> None:
        if self._start_when_ready and state == "ready":
            self.start_training()
        elif self._start_when_ready and state in ("dead", "stopped"):
            self._start_when_ready = False
            self.progress.setRange(0, 1000)
            self.state_label.setText("")
            self._show_error(f"Training could not start: the engine stopped ({detail})", dialog=True)
        if state in ("dead", "stopped", "starting") and (self._live() or self._train_request is not None):
            # The engine went away mid-run: nothing is live any more (its reply callbacks got an error already).
            self._status = None
            self._train_request = None
            self.progress.setRange(0, 1000)
            self.state_label.setText("The engine stopped; the run can be resumed from its last checkpoint.")
        self._update_buttons()

    def _on_workspace(self, *_):
        self._update_summary()
        self._update_buttons()
        self._follow_elsewhere()

    def _on_run_selected(self, run) -> None:
        run_id = run.get("id") if run else None
        if run_id == self.curves.run_id and run_id is not None:
            self._update_buttons()
            return
        self.curves = RunCurves(run_id)
        self._max_iters = int(run.get("max_iters") or 0) if run else 0
        self._schedule()
        self._update_buttons()
        self._update_summary()
        live = self._status is not None and self._status.run == run_id and self._live()
        if not live and self._train_request is None and not self._start_when_ready:
            self.state_label.setText("")  # a line about another run would now be read as this one's
        if run_id is None:
            return
        self._load_curves(run_id)
        load_parent_curves(self.session, self.loss_plot, run, lambda: self.curves.run_id)

    def reload_curves(self, run_id: int) -> None:
        self._load_curves(run_id)

    def _load_curves(self, run_id: int, fresh: bool = False) -> None:
        """The run's stored curves, merged with what arrived live meanwhile (fresh: replacing what is shown)."""

        def done(reply, rid=run_id):
            if rid != self.curves.run_id:
                return  # another run was selected meanwhile
            if reply.ok:
                if fresh:
                    self.curves = RunCurves(rid)
                self.curves.merge_history(reply.rows)
                self._schedule()
            elif not fresh:
                self._show_error(f"Could not load the curves of run {rid}: {reply.error}")

        self._metrics_request = self.session.request(p.MetricsRequest(run=run_id), done)

    def _follow_elsewhere(self) -> None:
        """A run another process trains sends no events here: its curves are reloaded with each fresh list of
        runs (studio/run_watch.py), and once more after it ended there."""
        run = self.shown_run()
        elsewhere = trained_elsewhere(run)
        if run is None or not (elsewhere or self._following == run.get("id")):
            return
        self._following = run["id"] if elsewhere else None
        self._load_curves(run["id"], fresh=True)

    def _on_run_updated(self, row: dict) -> None:
        if row.get("id") == self.curves.run_id:
            self._update_summary()
            self._update_buttons()

    def _on_metrics(self, run_id: int, rows: list) -> None:
        if self.curves.run_id is None:
            self.curves.run_id = run_id
        if run_id != self.curves.run_id:
            return
        self.curves.add_rows(rows)
        self._schedule()

    def _on_eval(self, ev) -> None:
        if self.curves.run_id is None:
            self.curves.run_id = ev.run
        if ev.run != self.curves.run_id:
            return
        self.curves.add_eval(ev.step, ev.val_loss, getattr(ev, "metrics", None))
        self._schedule()

    def _on_status(self, st) -> None:
        engine_state, run_state = p.status_states(st)
        about_run = st.run is not None and run_state is not None
        if not about_run and engine_state not in ("idle", "busy"):
            return
        if about_run:
            self._status = st
            if st.max_iters:
                self._max_iters = st.max_iters
        elif self._live():
            self._status = None  # the engine went idle: whatever ran has ended
        if about_run:
            advice = st.advice if run_state == "paused" else None  # the banner says the rest
            text = status_text(run_state, st.message)
            shown = st.run == self.curves.run_id or self.curves.run_id is None
            if shown:
                self.state_label.setText(text)  # the caption above names the run
                self._update_summary()
                self.divergence.show_advice(advice)
                if advice:  # it went back to a checkpoint: the curves past it are gone
                    self._load_curves(st.run, fresh=True)
            elif run_state in _LIVE:
                self.state_label.setText(f"Run {st.run} is {text.lower()} (another run is shown)")
            if run_state == "failed":
                self._show_error(f"Run {st.run} failed: {st.message}" if st.message else f"Run {st.run} failed")
        self._schedule()
        self._update_buttons()

    # ---------------------------------------------------------------------------------------------- drawing
    def _schedule(self) -> None:
        if not self._redraw_timer.isActive():
            self._redraw_timer.start()

    def _objective(self) -> str:
        """The objective of the shown run (of your settings before any run)."""
        run = self.shown_run()
        if run is not None and run.get("config"):
            return str(((run.get("config") or {}).get("objective") or {}).get("name") or "causal_lm")
        return self.session.config.objective.name

    def _draw_metrics(self) -> None:
        """The cards of the objective's metrics, and the views of its evaluations (plots, matrix, samples)."""
        c = self.curves
        objective = self._objective()
        over = loss_over_text(objective)
        self.loss_plot.setToolTip(self.loss_plot.base_tooltip + (f"\n{over}" if over else ""))
        self.loss_plot.set_axis_text("− reward + KL penalty" if objective == "reinforce" else "loss (nats/token)")
        names = run_metrics(objective, c.metric_names())
        self.metric_cards.set_metrics(names)
        self.metric_cards.show_values(c.last_metrics)
        classes = ((self.shown_run() or {}).get("config") or {}).get("objective", {}).get("classes") or []
        self.evaluation.draw(c, names, classes)

    def redraw(self) -> None:
        c = self.curves
        self._draw_metrics()
        self.train_curve.setData(c.steps, c.loss)
        self.val_curve.setData(c.val_steps, c.val_loss)
        self.lr_curve.setData(c.steps, c.lr)
        self.grad_curve.setData(c.steps, c.grad_norm)
        last = c.last
        step = int(last.get("step", 0)) if last else 0
        if self._status is not None and self._status.run == c.run_id:
            step = max(step, self._status.step)
        self.cards["step"].set(f"{step:,}" + (f" / {self._max_iters:,}" if self._max_iters else ""))
        self.cards["train_loss"].set(fmt_loss(last.get("loss")) if last else "—")
        self.cards["val_loss"].set(fmt_loss(c.last_val))
        self.cards["lr"].set(fmt_lr(last.get("lr")) if last else "—")
        self.cards["grad_norm"].set(fmt_grad(last.get("grad_norm")) if last else "—")
        self.cards["speed"].set(fmt_speed(last.get("tokens_per_sec")) if last else "—")
        self.cards["elapsed"].set(human_duration(last.get("elapsed_s")) if last else "—")
        live = self._live() and self._status.run == c.run_id
        eta = last.get("eta_s") if (last and live) else None
        self.cards["eta"].set(human_duration(eta) if live else "—")
        if self._train_request is None:
            self.progress.setRange(0, 1000)
            frac = step / self._max_iters if self._max_iters else 0.0
            self.progress.setValue(int(1000 * min(1.0, frac)))
            if self._max_iters:
                fmt = f"step {step:,} / {self._max_iters:,}"
                if live and eta is not None:
                    fmt += f" · ETA {human_duration(eta)}"
                self.progress.setFormat(fmt)
            else:
                self.progress.setFormat("")

    # ----------------------------------------------------------------------------------------------- state
    def _run_state(self) -> str | None:
        """The state of the run this panel last heard about (None before any)."""
        return p.status_states(self._status)[1] if self._status is not None else None

    def _live(self) -> bool:
        return self._run_state() in _LIVE

    def _update_buttons(self) -> None:
        engine_ok = self.session.engine_state in ("ready", "starting", "busy", "training", "paused")
        busy = self._train_request is not None or self._live() or self.session.is_training
        paused = self._run_state() == "paused"
        waiting = self._start_when_ready
        self.train_button.setEnabled(engine_ok and not busy and not waiting and self.session.engine_state != "busy")
        self.train_button.setText("Starting…" if waiting else "▶  Train")
        self.pause_button.setEnabled(self._run_state() in ("training", "paused"))
        self.pause_button.setText("Resume" if paused else "Pause")
        self.stop_button.setEnabled(busy or waiting)
        run = self.session.run
        resumable = (
            run is not None
            and not busy
            and not trained_elsewhere(run)
            and run.get("status") != "finished"
            and int(run.get("step") or 0) > 0
            and int(run.get("step") or 0) < int(run.get("max_iters") or 0)
        )
        self.resume_button.setEnabled(bool(resumable) and engine_ok)
        # While a run is live, Pause/Resume is the only resume there is: no second, greyed "Resume run" beside it.
        self.resume_button.setVisible(not (busy or waiting))

    def _show_error(self, error, dialog: bool = False, key: str = "") -> None:
        """Show an error in plain words; a config key (for people who use the CLI) goes to the tooltip and the
        dialog's small print."""
        if isinstance(error, ConfigError):
            text, key = user_message(error)
        else:
            text = str(error)
        # The key, for people who use the command line, on a second, smaller line.
        self.error_label.show_message(text, "error", detail=f"Config key: {key}" if key else "")
        if dialog:
            open_warning(self, "Training", text, f"Config key: {key}" if key else "")

    def _clear_error(self) -> None:
        self.error_label.clear_message()
