"""Playground: try a trained model in the ways its training allows. A decoder continues a prompt, token by token
(click a token to see how sure the model was, what else it considered, and where it looked; compare two
checkpoints side by side); an encoder-decoder writes an output for an input; a masked-LM encoder fills in blanks;
a span-corruption run fills gaps; a run trained on a pair task scores two texts. The modes shown are the run's
own (studio/state/playground_modes.py says which, and why).

The panel composes the run chooser and output panes (studio/widgets/playground_output.py), the settings column
(playground_settings.py), the token details (playground_details.py) and the other modes' pages
(playground_modes.py, which send their own questions); what is written and what is said about it is in
studio/state/playground.py, tested without a window. The panel talks to the engine for generation."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFontDatabase, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from engine import protocol as p
from studio.state.playground import (
    TokenAttentions,
    attention_row,
    decode_token_attention,
    default_run_id,
    key_tokens,
    prompt_placeholder,
    shared_seed,
)
from studio.state.playground_modes import modes_line, pair_task, run_kind, run_modes
from studio import theme
from studio.widgets.form_helpers import MessageLine, PanelHeader, guarded
from studio.widgets.playground_details import TokenDetails
from studio.widgets.playground_modes import ClassifyPage, FillMaskPage, InfillPage, ModeBar, ModePage, PairPage
from studio.widgets.playground_output import OutputPane, RunChooser, TokenText
from studio.widgets.playground_settings import GenerationSettings

FLUSH_MS = 33  # streamed tokens are painted at most ~30 times a second
# The settings column's controls, reached from the panel as before (tests, the main window, screenshots).
SETTING_CONTROLS = (
    "mode_combo",
    "temperature",
    "top_k",
    "top_p",
    "beam_width",
    "length_penalty",
    "max_new",
    "seed",
    "compare_box",
    "confidence_box",
    "legend",
    "generate_button",
    "stop_button",
)
INPUT_PLACEHOLDER = "The text the encoder reads; the decoder writes its output"


class PlaygroundPanel(QWidget):
    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self._flush = QTimer(self)
        self._flush.setSingleShot(True)
        self._flush.setInterval(FLUSH_MS)
        self._flush.timeout.connect(self._flush_tokens)
        self._details_for: tuple[OutputPane, int] | None = None
        self._attentions = TokenAttentions()
        self._placeholder_dataset = None
        self._placeholder = prompt_placeholder("")
        self.mode: str | None = "generate"  # the shown mode (None: the run supports none)
        self._build()
        self._restore_settings()
        session.workspaceChanged.connect(self._fill_runs)
        session.runSelected.connect(self._on_run_selected)
        session.runUpdated.connect(self._on_run_updated)
        session.engineStateChanged.connect(self._on_engine_state)  # a bound method: disconnected when this panel goes
        self._fill_runs()

    # -------------------------------------------------------------------------- the first pane, as before
    @property
    def pane(self) -> OutputPane:
        return self.panes[0]

    @property
    def run_combo(self) -> QComboBox:
        return self.panes[0].run_combo

    @property
    def output(self) -> TokenText:
        return self.panes[0].output

    @property
    def stats_label(self) -> QLabel:
        return self.panes[0].stats_label

    @property
    def generated(self) -> str:
        return self.panes[0].generated

    @property
    def writing(self) -> bool:
        """True while a model writes (a Generate has not been answered yet)."""
        return any(pane.request is not None for pane in self.panes)

    # ------------------------------------------------------------------------------------------ saved settings
    def settings(self) -> dict:
        """The sampling settings, the prompt and the other modes' texts, as kept in the workspace."""
        pages = {key: page.values() for key, page in self.mode_pages.items()}
        return {"prompt": self.prompt.toPlainText(), **self.form.values(), **pages}

    def _restore_settings(self) -> None:
        saved = self.session.ui("playground") or {}
        self.form.restore(saved)
        if isinstance(saved.get("prompt"), str):
            self.prompt.setPlainText(saved["prompt"])
        for key, page in self.mode_pages.items():
            page.restore(saved.get(key) if isinstance(saved.get(key), dict) else {})
            page.changed.connect(self._save_settings)
        self.form.changed.connect(self._save_settings)
        self.prompt.textChanged.connect(self._save_settings)

    def _save_settings(self, *_) -> None:
        self.session.set_ui("playground", self.settings())

    # --------------------------------------------------------------------------------------------------- build
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.addWidget(
            PanelHeader(
                "Playground",
                "Try a trained model. One that predicts the next token writes the rest of a text, one token at a "
                "time (click a written token to see what it was thinking there); others fill in blanks or gaps, "
                "turn one text into another, judge two texts, or name the class of a text.",
            )
        )
        root.addLayout(self._build_top())
        self.modes_label = theme.description_label("")
        self.modes_label.setToolTip("What the selected run was trained to do, and so what it can do here.")
        root.addWidget(self.modes_label)
        self.stack = QStackedWidget()
        self.stack.addWidget(self._build_generate_page())
        self.mode_pages: dict[str, ModePage] = {
            "fill_mask": FillMaskPage(),
            "infill": InfillPage(),
            "pair": PairPage(),
            "classify": ClassifyPage(),
        }
        for page in self.mode_pages.values():
            page.askPressed.connect(lambda page=page: self.ask(page))
            page.busyChanged.connect(self._update_buttons)
            self.stack.addWidget(page)
        self.nothing_page = QWidget()  # a run the Playground can ask nothing of: the line above says so
        self.stack.addWidget(self.nothing_page)
        root.addWidget(self.stack, 1)
        self.error_label = MessageLine()
        root.addWidget(self.error_label)
        esc = QShortcut(QKeySequence("Esc"), self)
        esc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        esc.activated.connect(self.stop)
        self._update_buttons()

    def _build_top(self) -> QHBoxLayout:
        """The run (and checkpoint) every mode asks, and the buttons of the modes it supports."""
        top = QHBoxLayout()
        top.addWidget(QLabel("<b>Run</b>"))
        self.chooser = RunChooser()
        top.addWidget(self.chooser, 1)
        self.mode_bar = ModeBar()
        self.mode_bar.modeChosen.connect(self.show_mode)
        top.addWidget(self.mode_bar)
        return top

    def _build_generate_page(self) -> QWidget:
        """Continue a text (and Text to text): the prompt and output panes, the settings, the token details."""
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self._build_texts())
        self.form = GenerationSettings()
        for name in SETTING_CONTROLS:
            setattr(self, name, getattr(self.form, name))
        self.compare_box.toggled.connect(self._on_compare)
        self.confidence_box.toggled.connect(self._on_confidence)
        self.generate_button.clicked.connect(self.generate)
        self.stop_button.clicked.connect(self.stop)
        split.addWidget(self.form)
        self.details = TokenDetails()
        self.details.attentionWanted.connect(self._draw_token_attention)
        split.addWidget(self.details)
        split.setStretchFactor(0, 5)
        split.setStretchFactor(1, 0)
        split.setStretchFactor(2, 3)
        self.generate_page = split
        return split

    def _build_texts(self) -> QWidget:
        """The prompt above the output panes (the second pane shows in Compare)."""
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        self.prompt_label = QLabel("Prompt")
        ll.addWidget(self.prompt_label)
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText(prompt_placeholder(""))  # the selected run's own text, once known
        self.prompt.setToolTip("The text the model continues. It may be empty: the model then starts from nothing.")
        self.prompt.setMaximumHeight(90)
        self.prompt.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        ll.addWidget(self.prompt)
        outputs = QHBoxLayout()
        # The first pane writes with the run chosen above every mode; the second (Compare) has its own chooser.
        self.panes = [OutputPane("Output", chooser=self.chooser), OutputPane("Compared with")]
        for pane in self.panes:
            pane.tokenClicked.connect(self.show_token_details)
            pane.run_combo.currentIndexChanged.connect(lambda *_, pane=pane: self._on_pane_run(pane))
            outputs.addWidget(pane, 1)
        self.panes[1].hide()
        ll.addLayout(outputs, 1)
        return left

    def handle_ctrl_return(self) -> bool:
        """Ctrl+Return (the window routes it here while this panel is shown): the shown mode's button."""
        page = self.mode_pages.get(self.mode or "")
        if page is not None:
            if page.ask_button.isEnabled():
                self.ask(page)
        elif self.generate_button.isEnabled():
            self.generate()
        return True

    def _on_compare(self, on: bool) -> None:
        self.panes[1].setVisible(on)
        self.panes[0].title_label.setText("<b>Output</b>" if not on else "<b>A</b>")
        self.panes[1].title_label.setText("<b>B</b>")
        if on:
            a, b = self.panes
            b.select_run(a.run_id())
            self._load_checkpoints(b, prefer_first=True)
        self._update_buttons()

    def _on_confidence(self, on: bool) -> None:
        for pane in self.panes:
            pane.colour_by_confidence = on
            pane.recolour()

    # ---------------------------------------------------------------------------------------------------- runs
    def _fill_runs(self, *_):
        runs = self.session.workspace.get("runs", [])
        for n, pane in enumerate(self.panes):
            current = pane.run_id()
            pane.set_runs(runs)
            pane.select_run(current if current is not None else default_run_id(self.session.run, runs))
            if n == 0 or pane.isVisibleTo(self):
                self._load_checkpoints(pane)  # a run may have new checkpoints since
        self._update_buttons()
        self._update_prompt_placeholder()  # the combo kept its index, so no signal said the run is new
        self._update_modes()

    def _on_run_updated(self, run: dict) -> None:
        for pane in self.panes:
            pane.update_run(run)

    def _on_run_selected(self, run) -> None:
        if run is not None:
            if self.run_combo.findData(run.get("id")) < 0:
                self._fill_runs()
            self.pane.select_run(run.get("id"))

    def selected_run_id(self):
        return self.panes[0].run_id()

    def _on_pane_run(self, pane: OutputPane) -> None:
        self._load_checkpoints(pane)
        self._update_buttons()
        if pane is self.panes[0]:
            self._update_prompt_placeholder()
            self._update_modes()

    # ---------------------------------------------------------------------------------------------------- modes
    def _update_modes(self) -> None:
        """The modes of the selected run: its buttons, the line that says why, and the page of the mode shown
        (kept when the new run supports it too)."""
        run = self.session.find("runs", self.selected_run_id())
        modes = run_modes(run) if run is not None else ["generate"]
        mode = self.mode if self.mode in modes else (modes[0] if modes else None)
        self.mode_bar.set_modes(modes, mode)
        self.modes_label.setText(modes_line(run) if run is not None or self.run_combo.count() == 0 else "")
        self.mode_pages["pair"].set_task(pair_task(run))
        self.show_mode(mode)

    def modes(self) -> list[str]:
        """The modes the selected run supports (their buttons show when there are two)."""
        return list(self.mode_bar.modes)

    def show_mode(self, mode: str | None) -> None:
        self.mode = mode
        self.mode_bar.set_modes(self.mode_bar.modes, mode)
        page = self.mode_pages.get(mode or "")
        self.stack.setCurrentWidget(page or (self.generate_page if mode else self.nothing_page))
        text2text = mode == "text2text"
        self.prompt_label.setText("Input" if text2text else "Prompt")
        self.prompt.setPlaceholderText(INPUT_PLACEHOLDER if text2text else self._placeholder)
        self._update_buttons()

    def ask(self, page: ModePage) -> None:
        """Send a mode page's question about the selected run and checkpoint."""
        if self.selected_run_id() is None:
            page.show_error("Train a model first: there is no run to ask yet.")
            return
        page.ask(self.session, self.selected_run_id(), self.chooser.checkpoint())

    def _update_prompt_placeholder(self) -> None:
        """An example prompt from the selected run's own dataset: how its text begins."""
        run = self.session.find("runs", self.selected_run_id())
        dataset = (run or {}).get("dataset_id")
        if dataset == self._placeholder_dataset:
            return  # asked already (the workspace is re-read often while training)
        self._placeholder_dataset = dataset
        if dataset is None or self.session.engine_state in ("dead", "stopped"):
            self._set_placeholder(prompt_placeholder(""))
            return

        def done(reply):
            if not reply.ok:
                self._placeholder_dataset = None  # ask again next time
            elif self._placeholder_dataset == dataset:
                self._set_placeholder(prompt_placeholder(reply.text))

        self.session.request(p.DatasetPreviewRequest(dataset=dataset, n_chars=400), guarded(self, done))

    def _set_placeholder(self, text: str) -> None:
        self._placeholder = text
        if self.mode != "text2text":
            self.prompt.setPlaceholderText(text)

    def _load_checkpoints(self, pane: OutputPane, prefer_first: bool = False) -> None:
        """Fill a pane's checkpoint list (CheckpointsRequest); 'latest' stays first."""
        pane.reset_checkpoints()
        run_id = pane.run_id()
        if run_id is None or self.session.engine_state in ("dead", "stopped"):
            return

        def done(reply):
            if reply.ok and pane.run_id() == run_id:
                pane.set_checkpoints(reply.rows, prefer_first)

        self.session.request(p.CheckpointsRequest(run=run_id), guarded(self, done))

    # ---------------------------------------------------------------------------------------------- generate
    def active_panes(self) -> list[OutputPane]:
        return self.panes if self.compare_box.isChecked() else self.panes[:1]

    def generate(self) -> None:
        if self.writing:
            return
        panes = self.active_panes()
        if any(pane.run_id() is None for pane in panes):
            self._show_error("Train a model first: there is no run to generate with yet.")
            return
        self._clear_error()
        prompt = self.prompt.toPlainText()
        mode = self.form.mode()
        seed = shared_seed(self.form.chosen_seed(), mode, len(panes))
        self._attentions.clear()
        self._details_for = None
        self.details.clear()
        for pane in panes:
            # An encoder-decoder's output is a text of its own, not a continuation: its input is not shown before it.
            pane.echo = run_kind(self.session.find("runs", pane.run_id()))[0] != "encoder-decoder"
            pane.start(prompt)
            msg = p.GenerateRequest(
                run=pane.run_id(),
                checkpoint=pane.checkpoint(),
                prompt=prompt,
                max_new_tokens=self.max_new.value(),
                mode=mode,
                temperature=self.temperature.value(),
                top_k=self.top_k.value() or None,
                top_p=self.top_p.value() or None,
                seed=seed,
                beam_width=self.beam_width.value(),
                length_penalty=self.length_penalty.value(),
                details=True,
            )
            # Kept before sending: the Session may answer at once (the engine has just stopped or died), and that
            # answer must find the request it ends, or the pane would stay "writing".
            pane.text.request = msg.id
            # guarded: a reply may come after this panel is gone.
            if pane is self.panes[0]:
                self.session.request(msg, guarded(self, self._on_reply), guarded(self, self._on_event))
            else:
                self.session.request(
                    msg,
                    guarded(self, lambda r, pane=pane: self._on_pane_reply(pane, r)),
                    guarded(self, lambda m, pane=pane: self._on_pane_event(pane, m)),
                )
        self._update_buttons()

    def stop(self) -> None:
        for pane in self.panes:
            if pane.request is not None:
                self.session.cancel(pane.request)
        for page in self.mode_pages.values():
            if page.request is not None:
                self.session.cancel(page.request)

    def _on_event(self, msg) -> None:
        self._on_pane_event(self.panes[0], msg)

    def _on_reply(self, reply) -> None:
        self._on_pane_reply(self.panes[0], reply)

    def _on_pane_event(self, pane: OutputPane, msg) -> None:
        if isinstance(msg, p.Token):
            pane.queue(msg)
            if not self._flush.isActive():
                self._flush.start()

    def _flush_tokens(self) -> None:
        for pane in self.panes:
            pane.flush()

    def _on_pane_reply(self, pane: OutputPane, reply) -> None:
        pane.finish(reply)
        if reply.ok:
            if self._details_for is not None and self._details_for[0] is pane:
                self._request_token_attention()
        else:
            self._show_error(f"Could not generate: {reply.error}")
        self._update_buttons()

    # ------------------------------------------------------------------------------------------ token details
    def show_token_details(self, pane: OutputPane, index: int) -> None:
        """Show what the model thought at token `index` of `pane` (probability, alternatives, attention)."""
        for other in self.panes:
            if other is not pane:
                other.select(None)
        pane.select(index)
        self._details_for = (pane, index)
        self.details.show_token(pane.tokens[index], index, len(pane.tokens))
        self._request_token_attention()

    def _attention_key(self, pane: OutputPane, index: int) -> tuple:
        return self._attentions.key(self.panes.index(pane), pane.run_id(), pane.checkpoint(), index)

    def attention_reply(self, pane: OutputPane, index: int):
        """The engine's TokenAttentionReply for token `index` of `pane`, once it came (None before)."""
        return self._attentions.get(self._attention_key(pane, index))

    def _request_token_attention(self) -> None:
        pane, index = self._details_for
        if not pane.echo:
            self.details.show_note(
                "The decoder looked at the input through cross-attention: the Attention panel shows it for "
                "encoder-decoder runs."
            )
            return
        if pane.request is not None:
            self.details.show_note("Where the model looked is shown once the text is finished.")
            return
        query = pane.attention_query(index)
        if query is None:
            self.details.show_note("This is the first token: there was nothing before it to look at.")
            return
        key = self._attention_key(pane, index)
        if key in self._attentions:
            self._draw_token_attention()
            return
        ids, position = query
        self.details.show_note("Asking the model where it looked…")
        msg = p.TokenAttentionRequest(run=pane.run_id(), checkpoint=pane.checkpoint(), ids=ids, position=position)

        def done(reply):
            if not reply.ok:
                if self._details_for == (pane, index):
                    self.details.show_note(f"Could not get the attention: {reply.error}")
                return
            self._attentions.put(key, reply)
            if self._details_for == (pane, index):
                self._draw_token_attention()

        self.session.request(msg, guarded(self, done))

    def token_attention(self, reply):
        """float32 [layer, head, keys] of a TokenAttentionReply."""
        return decode_token_attention(reply)

    def _draw_token_attention(self) -> None:
        if self._details_for is None:
            return
        reply = self.attention_reply(*self._details_for)
        if reply is None:
            return
        try:
            weights = decode_token_attention(reply)
        except (ValueError, IndexError):
            self.details.show_note("The engine's attention reply is damaged.")
            return
        self.details.set_shape(weights.shape[0], weights.shape[1])
        row = attention_row(weights, self.details.layer(), self.details.head())
        self.details.show_attention(key_tokens(reply, row.size), row)

    # --------------------------------------------------------------------------------------------------- state
    def _on_engine_state(self, *_) -> None:
        self._update_buttons()

    def _update_buttons(self) -> None:
        engine_ok = self.session.engine_state not in ("dead", "hung", "stopped")
        self.generate_button.setEnabled(not self.writing and engine_ok and self.run_combo.count() > 0)
        self.stop_button.setEnabled(self.writing)
        for page in getattr(self, "mode_pages", {}).values():
            page.ask_button.setEnabled(page.request is None and engine_ok and self.run_combo.count() > 0)

    def _show_error(self, text: str) -> None:
        self.error_label.show_message(text, "error")

    def _clear_error(self) -> None:
        self.error_label.clear_message()
