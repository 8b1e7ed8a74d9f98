"""ArchitecturePanel: presets fill the form, impossible values are refused (config untouched), undo works."""

from PySide6.QtCore import Qt

from engine.config import ModelConfig, RunConfig, param_count, preset
from engine.format import human_count
from studio.panels.architecture import ArchitecturePanel
from studio.session import Session
from studio.state.model_form import ASSUMED_CHAR_VOCAB


def make_panel(qtbot, tmp_path):
    session = Session(workspace_path=str(tmp_path))  # the engine is not needed: all of this is local
    panel = ArchitecturePanel(session)
    qtbot.addWidget(panel)
    panel.show()
    return session, panel


def field(panel, section, name):
    return panel.fields[(section, name)]


def test_preset_fills_form_and_estimates(qtbot, tmp_path):
    session, panel = make_panel(qtbot, tmp_path)
    assert panel.current_preset() == "baby"
    panel.preset_combo.setCurrentIndex(panel.preset_combo.findData("tiny"))
    panel.preset_combo.activated.emit(panel.preset_combo.currentIndex())

    tiny = preset("tiny")
    assert field(panel, "model", "n_layer").value() == tiny.model.n_layer == 2
    assert field(panel, "model", "n_head").value() == tiny.model.n_head
    assert field(panel, "model", "n_embd").value() == tiny.model.n_embd == 64
    assert field(panel, "train", "max_iters").value() == tiny.train.max_iters
    assert field(panel, "train", "learning_rate").value() == tiny.train.learning_rate
    assert panel.params_label.text() == human_count(param_count(tiny.model, ASSUMED_CHAR_VOCAB))
    assert "65 characters" in panel.vocab_note.text()
    assert session.config.model == tiny.model and session.config.train == tiny.train
    assert "2 layers" in panel.preset_description.text()
    # the diagram follows the config
    assert any("2 heads" in text for _, text in panel.diagram.boxes())


def test_estimates_follow_every_edit(qtbot, tmp_path):
    session, panel = make_panel(qtbot, tmp_path)
    field(panel, "model", "n_layer").setValue(8)
    m = ModelConfig(**{**session.config.model.__dict__})
    assert m.n_layer == 8
    assert panel.params_label.text() == human_count(param_count(m, ASSUMED_CHAR_VOCAB))
    assert panel.flops_label.text().endswith("FLOP/token")
    field(panel, "train", "batch_size").setValue(10)
    assert panel.tokens_label.text() == f"{10 * m.block_size:,}"
    assert panel.current_preset() == "custom"


def test_divisibility_error_refused_then_fixed(qtbot, tmp_path):
    session, panel = make_panel(qtbot, tmp_path)
    field(panel, "model", "n_embd").setValue(128)
    before = session.config.to_dict()
    changes = []
    session.configChanged.connect(lambda: changes.append(1))

    field(panel, "model", "n_head").setValue(3)
    assert panel.error_line.isVisible()
    assert "Width (128) must be a multiple of Attention heads (3)" in panel.error_line.text()
    assert panel.error_line.detail == "Config: model.n_embd, model.n_head"
    assert ("model", "n_head") in panel.invalid_fields()
    assert session.config.to_dict() == before  # not applied while invalid
    assert changes == []

    field(panel, "model", "n_head").setValue(8)
    assert not panel.error_line.isVisible()
    assert panel.invalid_fields() == []
    assert session.config.model.n_head == 8
    assert changes


def test_rope_and_min_lr_errors(qtbot, tmp_path):
    session, panel = make_panel(qtbot, tmp_path)
    # 2 heads x 33 dimensions: valid for learned positions, an odd head size for RoPE
    field(panel, "model", "n_head").setValue(2)
    field(panel, "model", "n_embd").setValue(66)
    assert session.config.model.n_embd == 66
    pos = field(panel, "model", "pos_encoding")
    pos.setCurrentIndex(pos.findData("rope"))
    assert "RoPE" in panel.error_line.text()
    assert ("model", "pos_encoding") in panel.invalid_fields()
    assert session.config.model.pos_encoding == "learned"
    pos.setCurrentIndex(pos.findData("learned"))
    assert panel.error == ""

    field(panel, "train", "min_lr").setValue(0.5)
    assert "min_lr" in panel.error_line.text()
    assert ("train", "min_lr") in panel.invalid_fields()
    assert session.config.train.min_lr != 0.5


def test_undo_restores_previous_preset(qtbot, tmp_path):
    session, panel = make_panel(qtbot, tmp_path)
    field(panel, "model", "n_layer").setValue(5)  # a custom edit, then a preset on top of it
    custom = session.config.copy()
    assert not panel.undo_button.isEnabled()
    panel.apply_preset("shakespeare-char")
    assert field(panel, "model", "n_embd").value() == 384
    assert panel.undo_button.isEnabled()

    qtbot.mouseClick(panel.undo_button, Qt.MouseButton.LeftButton)
    assert field(panel, "model", "n_layer").value() == 5
    assert field(panel, "model", "n_embd").value() == custom.model.n_embd
    assert session.config.model == custom.model and session.config.train == custom.train
    assert panel.current_preset() == "custom"
    assert not panel.undo_button.isEnabled()


def test_external_config_change_updates_form(qtbot, tmp_path):
    session, panel = make_panel(qtbot, tmp_path)
    cfg = RunConfig.from_dict({"model": {"n_layer": 3, "n_head": 2, "n_embd": 96}, "train": {"batch_size": 7}})
    session.set_config(cfg)
    assert field(panel, "model", "n_layer").value() == 3
    assert field(panel, "model", "n_embd").value() == 96
    assert field(panel, "train", "batch_size").value() == 7
    # a tokenizer's vocabulary replaces the assumed one in the estimates
    session.select_tokenizer({"id": 1, "name": "chars", "kind": "char", "vocab_size": 100, "dataset_id": 1})
    assert panel.params_label.text() == human_count(param_count(cfg.model, 100))
    assert "100 tokens" in panel.vocab_note.text()


def choose(panel, section, name, value):
    box = field(panel, section, name)
    box.setCurrentIndex(box.findData(value))


def test_the_form_offers_the_architectures_and_greys_out_what_does_not_apply(qtbot, tmp_path):
    session, panel = make_panel(qtbot, tmp_path)
    arch = field(panel, "model", "arch")
    assert [arch.itemData(i) for i in range(arch.count())] == ["decoder", "encoder", "encoder-decoder"]
    assert "only the tokens before it" in panel.arch_explained.text()
    decoder_layers, segments = field(panel, "model", "n_decoder_layer"), field(panel, "model", "n_segments")
    assert not decoder_layers.isEnabled() and panel.form.reasons[("model", "n_decoder_layer")].text() == (
        "(encoder-decoder only)"
    )
    assert not segments.isEnabled()
    for key in ("norm_position", "pos_encoding"):
        assert field(panel, "model", key).isEnabled()
    assert field(panel, "model", "pos_encoding").findData("alibi") >= 0

    choose(panel, "model", "arch", "encoder-decoder")
    assert session.config.model.arch == "encoder-decoder"
    assert decoder_layers.isEnabled() and not segments.isEnabled()
    assert "cross-attention" in panel.arch_explained.text()
    decoder_layers.setValue(1)
    assert session.config.model.decoder_layers == 1

    # the optimizer and the schedule decide their fields
    assert not field(panel, "train", "momentum").isEnabled()
    choose(panel, "train", "optimizer", "sgd")
    assert field(panel, "train", "momentum").isEnabled() and not field(panel, "train", "beta1").isEnabled()
    field(panel, "train", "nesterov").setChecked(True)
    assert session.config.train.nesterov and session.config.train.optimizer == "sgd"
    choose(panel, "train", "lr_schedule", "inverse_sqrt")
    assert session.config.train.lr_schedule == "inverse_sqrt" and not field(panel, "train", "min_lr").isEnabled()
    field(panel, "train", "label_smoothing").setValue(0.1)
    assert session.config.train.label_smoothing == 0.1

    choose(panel, "train", "optimizer", "adam")  # Nesterov needs SGD: refused, and Nesterov stays editable
    assert "Nesterov momentum needs the sgd Optimizer" in panel.error_line.text()
    assert field(panel, "train", "nesterov").isEnabled() and session.config.train.optimizer == "sgd"
    field(panel, "train", "nesterov").setChecked(False)
    assert session.config.train.optimizer == "adam" and not field(panel, "train", "nesterov").isEnabled()


def test_an_architecture_the_objective_cannot_train_switches_the_objective(qtbot, tmp_path):
    session, panel = make_panel(qtbot, tmp_path)
    assert session.config.objective.name == "causal_lm"
    choose(panel, "model", "arch", "encoder")
    assert session.config.model.arch == "encoder" and session.config.objective.name == "masked_lm"
    assert panel.error == "" and panel.note_line.isVisible()
    assert "Causal language modelling does not train an encoder, so the objective is now Masked" in (
        panel.note_line.text()
    )
    choose(panel, "model", "arch", "decoder")
    assert session.config.objective.name == "causal_lm"  # the one it had on a decoder


def test_the_diagram_draws_each_architecture(qtbot, tmp_path):
    session, panel = make_panel(qtbot, tmp_path)
    drawn = {}
    for arch in ("decoder", "encoder", "encoder-decoder"):
        choose(panel, "model", "arch", arch)
        d = panel.diagram.diagram()
        drawn[arch] = panel.diagram.boxes()
        assert [s.title for s in d.stacks] == {"decoder": ["Decoder"], "encoder": ["Encoder"]}.get(
            arch, ["Encoder", "Decoder"]
        )
        qtbot.waitUntil(lambda: panel.diagram.height() >= panel.diagram.minimumHeight())
    assert len({tuple(b) for b in drawn.values()}) == 3
    assert any(role == "cross" for role, _ in drawn["encoder-decoder"])
    assert any("both ways" in text for _, text in drawn["encoder"])
    assert panel.diagram.minimumWidth() > 400  # two stacks side by side
    before = panel.diagram.boxes()
    choose(panel, "model", "norm_position", "post")
    assert session.config.model.norm_position == "post" and panel.diagram.boxes() != before
    # a box's full text is its tooltip (the columns of an encoder-decoder elide it)
    placed = panel.diagram._layout()
    rect, box = placed[1].rects[3]
    assert panel.diagram.box_at(rect.center()) == box
