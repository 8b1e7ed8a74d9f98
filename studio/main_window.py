"""The main window: a sidebar in the order of the work, one panel per step, engine state in the status bar."""

from __future__ import annotations

import importlib

from PySide6.QtCore import QByteArray, QEvent, QSettings, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from studio import theme
from studio.icons import app_icon, panel_icon
from studio.widgets.form_helpers import open_warning
from studio.quit_dialog import BACKGROUND, CANCEL, ask_quit_while_training
from studio.run_names import run_status, run_title

# (key, sidebar label, module, class, icon (resources/icons/<icon>.svg), tooltip)
PAGES = [
    ("data", "Data", "data", "DataPanel", "data", "Import the text the model learns from."),
    ("vocab", "Vocabulary", "vocab", "VocabPanel", "vocab", "Train a tokenizer: how text is cut into tokens."),
    (
        "model",
        "Model",
        "architecture",
        "ArchitecturePanel",
        "model",
        "Design the transformer: layers, heads, width, context.",
    ),
    (
        "objective",
        "Objective",
        "objective",
        "ObjectivePanel",
        "objective",
        "Choose what the model is trained to predict.",
    ),
    ("train", "Train", "training", "TrainingPanel", "train", "Train the model and watch the loss fall."),
    (
        "attention",
        "Attention",
        "attention",
        "AttentionPanel",
        "attention",
        "Look inside the model: where each head looks, and how that changed during training.",
    ),
    ("playground", "Playground", "playground", "PlaygroundPanel", "playground", "Let a trained model write text."),
    ("runs", "Runs", "runs", "RunsPanel", "runs", "All runs: compare, resume, reuse."),
]


def _panel_class(module: str, name: str):
    return getattr(importlib.import_module(f"studio.panels.{module}"), name)


class MainWindow(QMainWindow):
    def __init__(self, session, settings: QSettings | None = None, parent=None):
        super().__init__(parent)
        self.session = session
        self.settings = settings if settings is not None else QSettings()
        self._quitting = False
        self._close_confirmed = False
        self.setWindowTitle("Transformer Studio")
        self.setWindowIcon(app_icon())
        self.resize(1280, 820)
        self.setMinimumSize(QSize(900, 600))

        self.sidebar = QListWidget()
        self.sidebar.setObjectName("sidebar")
        self.sidebar.setIconSize(QSize(20, 20))
        self.sidebar.setFixedWidth(170)
        self.sidebar.setSpacing(2)
        self.sidebar.setFrameShape(QListWidget.Shape.NoFrame)
        self.sidebar.setStyleSheet(
            "QListWidget#sidebar { background: palette(window); font-size: 11pt; outline: 0; }"
            "QListWidget#sidebar::item { padding: 8px 6px; border-radius: 4px; }"
            "QListWidget#sidebar::item:selected { background: palette(highlight);"
            " color: palette(highlighted-text); }"
        )
        self.stack = QStackedWidget()
        self.panels: dict[str, QWidget] = {}
        for i, (key, label, module, cls_name, icon, tip) in enumerate(PAGES):
            panel = _panel_class(module, cls_name)(session, self)
            self.panels[key] = panel
            self.stack.addWidget(panel)
            item = QListWidgetItem(panel_icon(icon, self.palette(), ratio=self.devicePixelRatioF()), label)
            item.setToolTip(f"{tip} (Ctrl+{i + 1})")
            self.sidebar.addItem(item)
        self.sidebar.currentRowChanged.connect(self._on_page)

        central = QWidget()
        lay = QHBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        side = QWidget()
        sl = QVBoxLayout(side)
        sl.setContentsMargins(6, 8, 0, 8)
        sl.addWidget(self.sidebar)
        lay.addWidget(side)
        content = QWidget()
        cl = QVBoxLayout(content)
        cl.setContentsMargins(12, 10, 12, 6)
        cl.addWidget(self.stack)
        lay.addWidget(content, 1)
        self.setCentralWidget(central)

        for i in range(len(PAGES)):
            sc = QShortcut(QKeySequence(f"Ctrl+{i + 1}"), self)
            sc.setWhatsThis(f"Show the {PAGES[i][1]} panel")
            sc.activated.connect(lambda i=i: self.sidebar.setCurrentRow(i))

        self._build_menus()
        self._build_status_bar()

        runs = self.panels["runs"]
        runs.openInPlayground.connect(self._open_in_playground)
        runs.showCurves.connect(lambda _id: self.show_page("train"))
        runs.fineTune.connect(self._fine_tune)

        session.engineStateChanged.connect(self._on_engine_state)
        session.workspaceChanged.connect(self._on_workspace)
        session.runSelected.connect(self._on_run)
        session.statusReceived.connect(lambda *_: self._on_run(session.run))
        session.metricsReceived.connect(lambda *_: self._on_run(session.run))
        session.notice.connect(self._on_notice)
        session.reattached.connect(self._on_reattached)

        self._restore_settings()
        self._on_engine_state(session.engine_state, session.engine_detail)
        self._on_workspace(session.workspace)
        self._on_run(session.run)
        if session.reattached_run is not None and session.is_training:  # it came back before this window
            self._on_reattached(session.reattached_run)

    # ------------------------------------------------------------------------------------------------ layout
    def _action(self, menu, text: str, slot, tip: str = "", keys=()) -> QAction:
        """A menu entry: its text, what it does, its tooltip and its shortcuts."""
        action = QAction(text, self)
        if keys:
            action.setShortcuts([QKeySequence(k) for k in keys])
        if tip:
            action.setToolTip(tip)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.open_action = self._action(
            file_menu,
            "&Open Workspace…",
            self.choose_workspace,
            keys=("Ctrl+O",),
            tip="Open another workspace folder (datasets, vocabularies and runs live there).",
        )
        self.trash_action = self._action(
            file_menu,
            "&Trash…",
            self.show_trash,
            tip="Datasets, tokenizers and runs deleted in the last 30 days: restore them or delete them for good.",
        )
        file_menu.addSeparator()
        # The same as the panels' buttons, for people who look in the menu first.
        self.import_action = self._action(
            file_menu,
            "&Import…",
            self.import_files,
            tip="Import text files as a dataset (the Data panel's Import file… button).",
        )
        self.export_action = self._action(
            file_menu,
            "&Export tokenizer…",
            self.export_tokenizer,
            tip="Save the tokenizer in use as a tokenizer.json file (the Vocabulary panel's Export button).",
        )
        file_menu.addSeparator()
        quit_action = self._action(file_menu, "&Quit", self.close, keys=("Ctrl+Q",))
        quit_action.setMenuRole(QAction.MenuRole.QuitRole)

        engine_menu = bar.addMenu("&Engine")
        self.restart_action = self._action(
            engine_menu, "&Restart engine", self.restart_engine, tip="Stop the engine process and start a fresh one."
        )
        engine_menu.addSeparator()
        # One window-wide Ctrl+Return: a panel-level shortcut on the same keys would make Qt call it ambiguous.
        self.train_action = self._action(
            engine_menu,
            "Start &training",
            self.ctrl_return,
            keys=("Ctrl+Return", "Ctrl+Enter"),
            tip="Start a new run with the current settings, from any panel (in the Playground and in a Compare "
            "text field, Ctrl+Return runs that panel's action).",
        )
        self.train_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)

        help_menu = bar.addMenu("&Help")
        self.shortcuts_action = self._action(
            help_menu,
            "&Keyboard shortcuts",
            self.show_shortcuts,
            keys=(QKeySequence.StandardKey.HelpContents,),
            tip="Every key the window answers to, and where it works.",
        )
        self.readme_action = self._action(
            help_menu,
            "Read the &README",
            self.open_readme,
            tip="Open the README: setting up, a first run, and what each panel does.",
        )
        help_menu.addSeparator()
        self.about_action = self._action(help_menu, "&About Transformer Studio", self.show_about)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.engine_label = QLabel()
        self.engine_label.setToolTip("The engine is the separate process that trains and runs the models.")
        self.restart_button = QPushButton("Restart")
        self.restart_button.setFlat(True)
        self.restart_button.setToolTip("Start the engine again.")
        self.restart_button.clicked.connect(self.restart_engine)
        self.restart_button.hide()
        self.notice_label = QLabel()
        self.notice_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.run_label = QLabel()
        self.workspace_label = QLabel()
        self.workspace_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        sb.addWidget(self.engine_label)
        sb.addWidget(self.restart_button)
        sb.addWidget(self.notice_label, 1)
        sb.addPermanentWidget(self.run_label)
        sb.addPermanentWidget(self.workspace_label)
        self._notice_timer = QTimer(self)
        self._notice_timer.setSingleShot(True)
        self._notice_timer.timeout.connect(self.notice_label.clear)

    def changeEvent(self, event) -> None:
        if event.type() == QEvent.Type.WindowStateChange:
            self.session.set_ui("window", window_shape(self.windowState()))
        if event.type() == QEvent.Type.PaletteChange:  # the system switched light/dark: recolour the icons
            self._paint_sidebar_icons()
        super().changeEvent(event)

    def _paint_sidebar_icons(self) -> None:
        for i, page in enumerate(PAGES):
            self.sidebar.item(i).setIcon(panel_icon(page[4], self.palette(), ratio=self.devicePixelRatioF()))

    # ------------------------------------------------------------------------------------------------ pages
    def _on_page(self, row: int) -> None:
        if row >= 0:
            self.stack.setCurrentIndex(row)
            self.session.set_ui("page", PAGES[row][0])

    def ctrl_return(self) -> None:
        """Ctrl+Return: the current panel's own run-this action where it has one, else start training."""
        panel = self.stack.currentWidget()
        handler = getattr(panel, "handle_ctrl_return", None)
        if handler is not None and handler():
            return
        self.show_page("train")
        self.panels["train"].start_training()

    def _fine_tune(self, cfg) -> None:
        """Runs → Fine-tune…: the Train panel starts the run and shows it."""
        self.show_page("train")
        self.panels["train"].start_config(cfg)

    def show_page(self, key: str) -> None:
        keys = [p[0] for p in PAGES]
        self.sidebar.setCurrentRow(keys.index(key))

    def current_page(self) -> str:
        return PAGES[self.stack.currentIndex()][0]

    def _open_in_playground(self, run_id: int) -> None:
        self.session.select_run(run_id)
        self.show_page("playground")

    # ---------------------------------------------------------------------------------------------- status bar
    def _on_engine_state(self, state: str, detail: str) -> None:
        color = theme.STATE_COLORS.get(state, theme.STATE_COLORS["stopped"])
        device = self.session.device_name or detail
        text = {
            "ready": f"Engine ready · {device}",
            "busy": f"Engine busy · {device}",
            "training": f"Training · {device}",
            "paused": f"Training paused · {device}",
            "starting": "Engine starting…",
            "stopping": "Engine stopping…",
            "hung": f"Engine not responding: {detail}",
            "dead": f"Engine stopped: {detail}",
            "stopped": "Engine stopped" + (f": {detail}" if detail else ""),
        }.get(state, f"Engine {state}")
        self.engine_label.setText(f'<span style="color:{color}">●</span> {_escape(text)}')
        self.engine_label.setToolTip(text)
        self.restart_button.setVisible(state in ("dead", "hung", "stopped"))

    def engine_status_text(self) -> str:
        """The status bar's engine line as plain text (tests and accessibility)."""
        return self.engine_label.toolTip()

    def _on_workspace(self, summary: dict) -> None:
        path = summary.get("path") or self.session.workspace_path
        self.workspace_label.setText(f"Workspace: {path}")
        self.workspace_label.setToolTip(str(path))
        self.settings.setValue("workspace", str(path))
        self._on_run(self.session.run)  # fresh rows: a run trained elsewhere moved on

    def _on_run(self, run) -> None:
        if not run:
            self.run_label.setText("No run selected")
            return
        self.run_label.setText(f"{run_title(run)} · {run_status(run)}")

    def _on_notice(self, level: str, text: str) -> None:
        if level == "info":
            return
        color = "#e5534b" if level == "error" else "#d29922"
        self.notice_label.setText(f'<span style="color:{color}">{_escape(text)}</span>')
        self.notice_label.setToolTip(text)
        self._notice_timer.start(20000 if level == "error" else 10000)

    # ---------------------------------------------------------------------------------------------- actions
    def choose_workspace(self) -> None:
        if self.session.is_training:
            QMessageBox.information(
                self, "Open workspace", "Stop the running training before opening another workspace."
            )
            return
        path = QFileDialog.getExistingDirectory(self, "Open workspace", self.session.workspace_path)
        if path:
            self.session.open_workspace(path)

    def restart_engine(self) -> None:
        if self.session.is_training and not self.ask(
            "Restart engine", "A training run is in progress. Stop it (a checkpoint is saved) and restart the engine?"
        ):
            return
        self.session.restart_engine()

    def show_trash(self):
        from studio.trash_dialog import TrashDialog

        dialog = TrashDialog(self.session, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()  # not exec(): the event loop goes on
        return dialog

    def about_lines(self) -> list[tuple[str, str]]:
        """(what, version or place) for the About box: this app, and the torch, Qt and device it runs on."""
        import platform

        import PySide6
        from PySide6.QtCore import qVersion

        from studio.app import app_version

        hello = self.session.hello
        engine = (
            "not connected yet"
            if hello is None
            else (getattr(hello, "torch_version", "") or "an engine too old to say")
        )
        return [
            ("Version", app_version()),
            ("torch (in the engine)", engine),
            ("Device", self.session.device_name or "not connected yet"),
            ("Qt", qVersion()),
            ("PySide6", PySide6.__version__),
            ("Python", platform.python_version()),
            ("Workspace", self.session.workspace_path),
        ]

    def show_about(self) -> QMessageBox:
        box = QMessageBox(self)
        box.setWindowTitle("About Transformer Studio")
        box.setIconPixmap(self.windowIcon().pixmap(64, 64))
        rows = "".join(
            f"<tr><td>{_escape(what)}&nbsp;&nbsp;</td><td>{_escape(value)}</td></tr>"
            for what, value in self.about_lines()
        )
        box.setText(
            "<b>Transformer Studio</b><br>Train small transformer language models on your own text, "
            f"watch them learn, and play with them.<br><br><table>{rows}</table>"
        )
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()  # not exec(): training goes on while it is open
        return box

    def show_shortcuts(self):
        """Help → Keyboard shortcuts (F1): one non-modal page, raised again if it is already open."""
        from studio.shortcuts_dialog import ShortcutsDialog

        dialog = getattr(self, "_shortcuts_dialog", None)
        if dialog is None:
            dialog = self._shortcuts_dialog = ShortcutsDialog(self)
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        return dialog

    def open_readme(self) -> str | None:
        """Open the README in the system's viewer; the path opened, or None (and a notice) if there is none."""
        from PySide6.QtCore import QUrl
        from PySide6.QtGui import QDesktopServices

        from studio.icons import readme_path

        path = readme_path()
        if path is None:
            self._on_notice("warning", "The README is not installed with this copy; it is on the project's page.")
            return None
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))
        return str(path)

    def import_files(self) -> None:
        """File → Import…: the Data panel, with its file chooser open."""
        self.show_page("data")
        self.panels["data"].choose_files()

    def export_tokenizer(self) -> None:
        """File → Export tokenizer…: the Vocabulary panel's export of the tokenizer in use."""
        self.show_page("vocab")
        self.panels["vocab"].export_json()

    def ask(self, title: str, text: str) -> bool:
        """A yes/no question (tests replace this method)."""
        answer = QMessageBox.question(
            self,
            title,
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def request_quit(self) -> None:
        """Ctrl-C in the terminal: the same as closing the window (asks if a run is in progress)."""
        self.close()

    # ---------------------------------------------------------------------------------------------- settings
    def _restore_settings(self) -> None:
        geometry = self.settings.value("geometry")
        if isinstance(geometry, (QByteArray, bytes)):
            self.restoreGeometry(geometry)
        state = self.settings.value("windowState")
        if isinstance(state, (QByteArray, bytes)):
            self.restoreState(state)
        # The page shown and maximized/full screen are the workspace's (they come back with it); size is the machine's.
        page = self.session.ui("page") or self.settings.value("page", "data")
        keys = [p[0] for p in PAGES]
        self.sidebar.setCurrentRow(keys.index(page) if page in keys else 0)
        shape = self.session.ui("window")
        if shape in _WINDOW_SHAPES:
            self.setWindowState(_WINDOW_SHAPES[shape])

    def save_settings(self) -> None:
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("windowState", self.saveState())
        self.settings.setValue("page", self.current_page())
        self.settings.setValue("workspace", self.session.workspace_path)
        self.settings.sync()
        self.session.save_state()

    def ask_quit_while_training(self) -> str:
        """ "background", "stop" or "cancel" (tests replace this method)."""
        run = self.session.training_run
        return ask_quit_while_training(self, run_title(self.session.find("runs", run) or {"id": run}))

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.session.is_training and not self._close_confirmed:
            choice = self.ask_quit_while_training()
            if choice == CANCEL:
                event.ignore()
                return
            if choice == BACKGROUND:
                problem = self.session.keep_training_in_background()
                if problem is None:
                    self._close_confirmed = True
                    self.save_settings()
                    self.session.client.let_go()
                    event.accept()
                    return
                open_warning(self, "Quit", f"The run cannot keep training without the window: {problem}.")
                event.ignore()
                return
        self._close_confirmed = True
        self.save_settings()
        self.notice_label.setText("Stopping the engine…")
        # shutdown_request stops a running training with a checkpoint; give it time before escalating.
        client = self.session.client
        training = self.session.is_training
        client.stop(kill_after=30.0 if training else None)
        client.wait_stopped(31.0 if training else None)
        client.kill_now()
        event.accept()

    def _on_reattached(self, run_id: int) -> None:
        """A run kept training while no window was open: show it, live, where it is followed."""
        self.session.select_run(run_id)
        self.show_page("train")
        # What the engine trained in its last second without a window reached the store after the history was
        # read (it writes metrics once a second): read it again once stored, to close that gap in the curve.
        QTimer.singleShot(2500, self, lambda: self.panels["train"].reload_curves(run_id))
        self.notice_label.setText(f"Reattached to run {run_id}: it kept training while the window was closed.")
        self._notice_timer.start(10000)


_WINDOW_SHAPES = {
    "normal": Qt.WindowState.WindowNoState,
    "maximized": Qt.WindowState.WindowMaximized,
    "fullscreen": Qt.WindowState.WindowFullScreen,
}


def window_shape(state) -> str:
    """ "fullscreen", "maximized" or "normal" for a window's state flags (minimized is not worth keeping)."""
    if state & Qt.WindowState.WindowFullScreen:
        return "fullscreen"
    if state & Qt.WindowState.WindowMaximized:
        return "maximized"
    return "normal"


def _escape(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
