"""Runs → Fine-tune…: start a new run from the selected run's weights, on the same or another dataset, training
every weight or only LoRA's low-rank updates, or rewarding what it writes (REINFORCE).

The choices and the config they make are studio/state/finetune.py's; this dialog only lays them out, fills the
checkpoint list from the engine, and says what will train before the user presses Start.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
)

from engine import protocol as p
from engine.config import ConfigError, RunConfig, user_message
from studio import theme
from studio.state.finetune import (
    LORA_MATRICES,
    MODES,
    FinetuneChoices,
    default_choices,
    finetune_config,
    labels_problem,
    objective_choices,
    trainable_text,
)
from studio.state.runs import objective_label
from studio.widgets.form_helpers import (
    BoundedDoubleSpinBox,
    BoundedSpinBox,
    MessageLine,
    SciSpinBox,
    choice_combo,
    guarded,
)


class FinetuneDialog(QDialog):
    """Accepting it leaves the new run's RunConfig in `.config`."""

    def __init__(self, session, run: dict, parent=None):
        super().__init__(parent)
        self.session, self.run = session, run
        self.config: RunConfig | None = None
        self.setWindowTitle(f"Fine-tune run {run['id']}")
        self.setMinimumWidth(520)
        start = default_choices(run)
        root = QVBoxLayout(self)
        intro = theme.description_label(
            f"A new run starts from the weights of <b>{escape(str(run.get('name') or run['id']))}</b>, with its "
            "model and vocabulary, and goes on learning from the data you choose here."
        )
        intro.setTextFormat(Qt.TextFormat.RichText)
        root.addWidget(intro)
        form = QFormLayout()
        root.addLayout(form)
        self._build_fields(form, start)
        self.trainable_label = theme.description_label("")
        root.addWidget(self.trainable_label)
        self.error_label = MessageLine(self)
        root.addWidget(self.error_label)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.start_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.start_button.setText("Start fine-tuning")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        root.addWidget(self.buttons)
        self._load_checkpoints()
        self._update()

    def _build_fields(self, form: QFormLayout, start: FinetuneChoices) -> None:
        datasets = [(d["id"], d.get("name") or str(d["id"])) for d in self.session.workspace.get("datasets", [])]
        self.dataset_combo = choice_combo(
            datasets,
            "The text the new run learns from. Another dataset is read with this run's vocabulary; letters it "
            "never saw become the unknown token.",
        )
        self.dataset_combo.setCurrentIndex(max(0, self.dataset_combo.findData(start.dataset)))
        self.checkpoint_combo = choice_combo([("latest", "latest")], "The saved weights the new run starts from.")
        self.objective_combo = choice_combo(
            [(name, objective_label(name)) for name in objective_choices(self.run)],
            "What the new run learns: the objectives this run's architecture can train.",
        )
        self.objective_combo.setCurrentIndex(max(0, self.objective_combo.findData(start.objective)))
        self.mode_combo = choice_combo(
            MODES,
            "Full fine-tuning trains every weight. LoRA freezes the model and trains small low-rank updates of the "
            "chosen matrices, a few percent of the parameters; they are folded into the weights to generate. "
            "Prompt tuning freezes a decoder and trains only a few vectors it reads before every input.",
        )
        self.rank_box = BoundedSpinBox()
        self.rank_box.setRange(1, 1024)
        self.rank_box.setValue(start.lora_rank)
        self.rank_box.setToolTip("LoRA rank (train.lora_rank): how many directions each update may change.")
        self.alpha_box = BoundedDoubleSpinBox()
        self.alpha_box.setRange(0.01, 4096)
        self.alpha_box.setValue(start.lora_alpha)
        self.alpha_box.setToolTip("LoRA alpha (train.lora_alpha): the updates are scaled by alpha / rank.")
        self.targets_combo = choice_combo(
            LORA_MATRICES, "LoRA matrices (train.lora_targets): which layers get updates."
        )
        self.prompt_box = BoundedSpinBox()
        self.prompt_box.setRange(1, 1024)
        self.prompt_box.setValue(start.prompt_tokens)
        self.prompt_box.setToolTip(
            "Soft-prompt vectors (train.prompt_tokens): how many learned vectors go before every input."
        )
        self.steps_box = BoundedSpinBox()
        self.steps_box.setRange(1, 10_000_000)
        self.steps_box.setSingleStep(100)
        self.steps_box.setValue(start.steps)
        self.steps_box.setToolTip("Training steps of the new run (train.max_iters).")
        self.lr_box = SciSpinBox(1e-7, 1.0)
        self.lr_box.setValue(start.learning_rate)
        self.lr_box.setToolTip(
            "Learning rate (train.learning_rate). Fine-tuning usually takes a tenth of the pre-training rate."
        )
        self._build_reward_fields(start)
        for label, box in (
            ("Dataset", self.dataset_combo),
            ("Checkpoint", self.checkpoint_combo),
            ("Objective", self.objective_combo),
            ("Fine-tuning", self.mode_combo),
            ("LoRA rank", self.rank_box),
            ("LoRA alpha", self.alpha_box),
            ("LoRA matrices", self.targets_combo),
            ("Soft-prompt vectors", self.prompt_box),
            ("Training steps", self.steps_box),
            ("Learning rate", self.lr_box),
            ("Reward", self.reward_edit),
            ("KL penalty", self.kl_box),
            ("Samples per prompt", self.samples_box),
            ("Prompts", self.prompts_edit),
        ):
            form.addRow(label, box)
            if isinstance(box, (QLineEdit, QPlainTextEdit)):
                box.textChanged.connect(lambda *_: self._update())
                continue
            signal = box.currentIndexChanged if isinstance(box, QComboBox) else box.valueChanged
            signal.connect(lambda *_: self._update())
        self._lora_rows = (self.rank_box, self.alpha_box, self.targets_combo)
        self._reward_rows = (self.reward_edit, self.kl_box, self.samples_box, self.prompts_edit)
        self._form = form

    def _build_reward_fields(self, start: FinetuneChoices) -> None:
        """REINFORCE's rows, shown when it is the objective."""
        self.reward_edit = QLineEdit(start.reward)
        self.reward_edit.setObjectName("objective.reward")
        self.reward_edit.setToolTip(
            "What a written text earns (objective.reward): contains:love,joy · avoids:war · length:12 (words) · "
            "regex:[0-9]+ · classifier:RUN:LABEL (a classification run's probability of LABEL). Join several with "
            "; to add them up. Nothing written here is ever run as code."
        )
        self.kl_box = BoundedDoubleSpinBox()
        self.kl_box.setRange(0.0, 100.0)
        self.kl_box.setDecimals(3)
        self.kl_box.setSingleStep(0.01)
        self.kl_box.setValue(start.kl_coef)
        self.kl_box.setToolTip(
            "KL penalty (objective.kl_coef): how strongly the model is held near this run. Too little and it games "
            "the reward with gibberish that scores; too much and it cannot change."
        )
        self.samples_box = BoundedSpinBox()
        self.samples_box.setRange(1, 256)
        self.samples_box.setValue(start.samples_per_prompt)
        self.samples_box.setToolTip(
            "Samples per prompt (objective.samples_per_prompt): texts written after each prompt at every step, "
            "each compared with the others of its prompt."
        )
        self.prompts_edit = QPlainTextEdit("\n".join(start.prompts))
        self.prompts_edit.setPlaceholderText("One prompt per line; none: beginnings drawn from the dataset")
        self.prompts_edit.setToolTip("Prompts (objective.prompts): what the model continues while it learns.")
        self.prompts_edit.setFixedHeight(72)

    def _load_checkpoints(self) -> None:
        def done(reply) -> None:
            if not getattr(reply, "ok", False):
                return
            for row in reversed(reply.rows):
                if row.get("name") == "latest":
                    continue
                loss = row.get("val_loss")
                text = f"step {int(row.get('step') or 0):,}" + (f" (val loss {loss:.3f})" if loss is not None else "")
                self.checkpoint_combo.addItem(text, row["name"])

        self.session.request(p.CheckpointsRequest(run=self.run["id"]), guarded(self, done))

    def choices(self) -> FinetuneChoices:
        return FinetuneChoices(
            dataset=int(self.dataset_combo.currentData() or 0),
            objective=str(self.objective_combo.currentData()),
            checkpoint=str(self.checkpoint_combo.currentData() or "latest"),
            mode=str(self.mode_combo.currentData()),
            lora_rank=self.rank_box.value(),
            lora_alpha=self.alpha_box.value(),
            lora_targets=str(self.targets_combo.currentData()),
            prompt_tokens=self.prompt_box.value(),
            steps=self.steps_box.value(),
            learning_rate=self.lr_box.value(),
            reward=self.reward_edit.text(),
            kl_coef=self.kl_box.value(),
            samples_per_prompt=self.samples_box.value(),
            prompts=tuple(self.prompts_edit.toPlainText().splitlines()),
        )

    def _update(self) -> None:
        choices = self.choices()
        for box in self._lora_rows:
            box.setEnabled(choices.mode == "lora")
        self.prompt_box.setEnabled(choices.mode == "prompt_tuning")
        for box in self._reward_rows:
            self._form.setRowVisible(box, choices.objective == "reinforce")
        tok = self.session.find("tokenizers", self.run.get("tokenizer_id"))
        vocab = int((tok or {}).get("vocab_size") or 0)
        try:
            self.config = finetune_config(self.run, choices)
            problem = labels_problem(choices.objective, self.session.find("datasets", choices.dataset))
            if problem:
                raise ConfigError(problem, "data.dataset", also=("objective.name",))
        except ConfigError as e:
            self.config = None
            words, key = user_message(e)
            self.error_label.show_message(words, "error", key)
            self.trainable_label.setText("")
        else:
            self.error_label.clear_message()
            self.trainable_label.setText(trainable_text(self.run, choices, vocab))
        self.start_button.setEnabled(self.config is not None and self.dataset_combo.count() > 0)
