"""ObjectivePanel: every objective of the catalog, grouped, each choosable; choosing one the model cannot train
switches the architecture (and says so, undoably); its options edit the config; "What the model sees" shows a
real batch from the real engine that changes with the objective."""

from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QGroupBox, QLabel

from tests.conftest import shown
from engine.config import FIELD_LABELS
from engine.objectives.catalog import GROUPS, OBJECTIVE_CATALOG, OBJECTIVE_NAMES
from studio.panels.objective import ObjectivePanel
from studio.session import Session
from studio.state.objective import has_target, marks_in

SAMPLE_TIMEOUT_MS = 60_000


def offline_panel(qtbot, tmp_path, size=(1200, 800)):
    session = Session(workspace_path=str(tmp_path))  # choosing and options need no engine
    return session, shown(qtbot, ObjectivePanel(session), size)


def click(qtbot, button):
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton, pos=QPoint(8, button.height() // 2))


def group_of(widget) -> str:
    w = widget.parentWidget()
    while w is not None and not isinstance(w, QGroupBox):
        w = w.parentWidget()
    return w.title() if w is not None else ""


def test_every_objective_is_choosable_in_its_group_with_its_words(qtbot, tmp_path):
    session, panel = offline_panel(qtbot, tmp_path)
    assert set(panel.buttons) == set(OBJECTIVE_NAMES)
    texts = {label.text() for label in panel.findChildren(QLabel)}
    for name, info in OBJECTIVE_CATALOG.items():
        button = panel.buttons[name]
        assert button.isEnabled() and button.text() == info.label
        assert group_of(button) == GROUPS[info.group]
        assert info.teaches in texts and any(t.startswith(info.paper) for t in texts)
    titles = [b.title() for b in panel.findChildren(QGroupBox) if b.title() in GROUPS.values()]
    assert titles == list(GROUPS.values())
    assert panel.selected() == "causal_lm" and "Causal language modelling" in panel.status.text()


def test_an_unknown_objective_in_the_config_is_named(qtbot, tmp_path):
    session = Session(workspace_path=str(tmp_path))
    session.config.objective.name = "electra"  # e.g. a config written by a newer studio
    panel = shown(qtbot, ObjectivePanel(session))
    assert panel.selected() is None and "does not know ('electra')" in panel.status.text()
    with qtbot.waitSignal(session.configChanged, timeout=1000):
        click(qtbot, panel.buttons["causal_lm"])
    assert session.config.objective.name == "causal_lm" and panel.selected() == "causal_lm"


def test_masked_lm_switches_the_architecture_to_an_encoder_says_so_and_undoes(qtbot, offline_window):
    session, panel = offline_window.session, offline_window.panels["objective"]
    offline_window.show_page("objective")
    assert session.config.model.arch == "decoder"
    click(qtbot, panel.buttons["masked_lm"])
    assert session.config.objective.name == "masked_lm" and session.config.model.arch == "encoder"
    assert panel.switch_note.isVisible()
    assert "Masked language modelling trains an encoder: the architecture is now encoder" in panel.switch_note.text()
    model = offline_window.panels["model"]
    assert model.fields[("model", "arch")].currentData() == "encoder"  # the Model panel shows it too
    assert model.fields[("model", "n_segments")].isEnabled()  # encoders have segments

    panel.switch_note.linkActivated.emit("undo")
    assert (session.config.objective.name, session.config.model.arch) == ("causal_lm", "decoder")
    assert not panel.switch_note.isVisible()
    assert model.fields[("model", "arch")].currentData() == "decoder"

    click(qtbot, panel.buttons["nsp"])  # a pair task: an encoder with two segments
    assert (session.config.model.arch, session.config.model.n_segments) == ("encoder", 2)
    assert "the architecture is now encoder and Segments is now 2" in panel.switch_note.text()
    click(qtbot, panel.buttons["masked_lm"])  # fits the encoder: nothing to say
    assert session.config.model.arch == "encoder" and not panel.switch_note.isVisible()


def test_the_options_are_form_fields_that_edit_the_config(qtbot, tmp_path):
    session, panel = offline_panel(qtbot, tmp_path)
    assert panel.options.fields == {}  # causal LM has none
    assert panel.options.none_label.isVisible()
    panel.choose("masked_lm")
    options = panel.options
    assert list(options.fields) == list(OBJECTIVE_CATALOG["masked_lm"].options)
    assert options.labels["mask_prob"].text() == FIELD_LABELS["objective.mask_prob"] + ":"
    assert "The paper's default: 0.15" in options.fields["mask_prob"].toolTip()
    options.fields["mask_prob"].setValue(0.25)
    assert session.config.objective.mask_prob == 0.25

    options.fields["mask_token_share"].setValue(0.95)  # with 0.1 random: more than all of them
    assert options.error_line.isVisible() and "add up to more than all" in options.error_line.text()
    assert session.config.objective.mask_token_share == 0.8  # not applied
    assert options.fields["mask_token_share"].property("invalid")
    options.fields["mask_token_share"].setValue(0.7)
    assert not options.error_line.isVisible() and session.config.objective.mask_token_share == 0.7

    click(qtbot, options.defaults_button)
    assert (session.config.objective.mask_prob, session.config.objective.mask_token_share) == (0.15, 0.8)
    assert options.fields["mask_prob"].value() == 0.15


def test_denoising_noises_are_check_boxes_and_fim_needs_a_decoder(qtbot, tmp_path):
    session, panel = offline_panel(qtbot, tmp_path)
    panel.choose("denoising")
    noises = panel.options.fields["noises"]
    assert [n for n, b in noises.boxes.items() if b.isChecked()] == ["text_infilling", "sentence_permutation"]
    noises.boxes["sentence_permutation"].setChecked(False)
    noises.boxes["token_deletion"].setChecked(True)
    assert session.config.objective.noises == "token_deletion,text_infilling"
    noises.boxes["token_deletion"].setChecked(False)
    noises.boxes["text_infilling"].setChecked(False)  # none at all: refused
    assert "Noise functions must be one or more" in panel.options.error_line.text()
    assert session.config.objective.noises == "text_infilling"

    panel.choose("span_corruption")  # on the encoder-decoder denoising chose: fill-in-the-middle does nothing
    assert session.config.model.arch == "encoder-decoder"
    assert not panel.options.fields["fim_rate"].isEnabled()
    assert "on a decoder only" in panel.options.labels["fim_rate"].text()


# --------------------------------------------------------------------------------------- with the real engine


def sample_text(panel) -> str:
    return panel.sample.view.plain_text()


def wait_for_batch(qtbot, panel, check) -> None:
    """Until the batch on screen is the answer to the latest request and passes `check(rows)`."""
    qtbot.waitUntil(
        lambda: bool(panel.sample.pending is None and panel.sample.view.rows and check(panel.sample.view.rows)),
        timeout=SAMPLE_TIMEOUT_MS,
    )


def test_what_the_model_sees_follows_the_objective(qtbot, session):
    session.update_config("model", n_layer=1, n_head=2, n_embd=32, block_size=32)
    panel = shown(qtbot, ObjectivePanel(session), (1280, 800))
    assert session.config.data.dataset is not None  # the sample text, chosen for a new workspace
    wait_for_batch(qtbot, panel, lambda rows: not has_target(rows))
    assert panel.sample.view.message.isHidden(), panel.sample.view.message.text()
    causal = sample_text(panel)
    assert "[MASK]" not in causal and "carries loss" in panel.sample.view.legend.text()

    panel.choose("masked_lm")
    wait_for_batch(qtbot, panel, lambda rows: "masked" in marks_in(rows))
    assert "[MASK]" in sample_text(panel) and "hidden as [MASK]" in panel.sample.view.legend.text()

    panel.choose("span_corruption")
    assert session.config.model.arch == "encoder-decoder"
    wait_for_batch(qtbot, panel, lambda rows: has_target(rows) and "sentinel" in marks_in(rows))
    shown_text = sample_text(panel)
    assert "<extra_id_0>" in shown_text and "Target (the decoder writes)" in shown_text

    qtbot.mouseClick(panel.sample.another_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: panel.sample.pending is None and sample_text(panel) != shown_text, timeout=SAMPLE_TIMEOUT_MS
    )
    assert "<extra_id_0>" in sample_text(panel)

    # an option edit draws the batch again (after a short pause), corrupted the new way
    before = sample_text(panel)
    panel.options.fields["noise_density"].setValue(0.5)
    qtbot.waitUntil(lambda: panel.sample.pending is None and sample_text(panel) != before, timeout=SAMPLE_TIMEOUT_MS)


def test_an_engine_error_is_shown_in_words(qtbot, session):
    panel = shown(qtbot, ObjectivePanel(session), (1280, 800))
    session.update_config("model", block_size=4)  # too short for anything to be cut out of it
    panel.choose("span_corruption")
    message = panel.sample.view.message
    qtbot.waitUntil(lambda: panel.sample.pending is None and message.isVisible(), timeout=SAMPLE_TIMEOUT_MS)
    assert message.text().startswith("No sample batch: ") and "objective." not in message.text()


def test_distillation_offers_the_trained_decoder_runs_as_teachers(qtbot, tmp_path):
    session, panel = offline_panel(qtbot, tmp_path)
    decoder = {"model": {"arch": "decoder"}}
    session.apply_workspace(
        {"path": str(tmp_path), "datasets": [], "tokenizers": [], "runs": [
            {"id": 1, "name": "big", "step": 600, "config": decoder},
            {"id": 2, "name": "bert", "step": 300, "config": {"model": {"arch": "encoder"}}},
            {"id": 3, "name": "untrained", "step": 0, "config": decoder},
        ]}
    )  # fmt: skip
    click(qtbot, panel.buttons["distillation"])
    assert session.config.objective.name == "distillation" and session.config.model.arch == "decoder"
    box = panel.options.fields["teacher_run"]
    assert [box.itemText(i) for i in range(box.count())] == ["Choose a trained run…", "1 · big (600 steps)"]
    assert session.config.objective.teacher_run is None
    with qtbot.waitSignal(session.configChanged, timeout=1000):
        box.setCurrentIndex(1)
    assert session.config.objective.teacher_run == 1
    panel.options.fields["distill_alpha"].setValue(0.8)
    assert session.config.objective.distill_alpha == 0.8 and not panel.options.error_line.isVisible()
    panel.restore_defaults()  # the paper's numbers come back; the teacher, the user's choice, stays
    assert session.config.objective.distill_alpha == 0.5 and session.config.objective.teacher_run == 1


def test_every_objective_s_options_form_shows_each_paper_default(qtbot, tmp_path):
    session, panel = offline_panel(qtbot, tmp_path)
    for name, info in OBJECTIVE_CATALOG.items():
        panel.choose(name)
        assert list(panel.options.fields) == list(info.options), name
        for key, field in panel.options.fields.items():
            assert "The paper's default: " in field.toolTip() and f"objective.{key}" in field.toolTip()
    panel.choose("sft")  # a text option's default reads as it would be typed
    assert "The paper's default: Q: {prompt}\\nA: ." in panel.options.fields["template"].toolTip()


def test_reinforce_asks_for_a_reward_in_words_and_takes_a_typed_one(qtbot, tmp_path):
    session, panel = offline_panel(qtbot, tmp_path)
    panel.choose("reinforce")
    options = panel.options
    assert options.fields["baseline"].currentData() == "mean"
    assert "Nothing you write here is ever run as code" in options.fields["reward"].toolTip()
    options.fields["reward"].setText("contains:love")
    options.fields["reward"].editingFinished.emit()
    assert session.config.objective.reward == "contains:love"
    options.fields["reward"].setText("love")
    options.fields["reward"].editingFinished.emit()
    assert options.error_line.isVisible() and "'love' is not a reward" in options.error_line.text()
    assert session.config.objective.reward == "contains:love"  # not applied
