"""ObjectivePanel: bound to session.config.objective.name; later objectives shown but not choosable."""

from PySide6.QtCore import QPoint, Qt

from studio.panels.objective import ObjectivePanel
from studio.session import Session


def test_causal_lm_selected_and_bound(qtbot, tmp_path):
    session = Session(workspace_path=str(tmp_path))
    session.config.objective.name = "masked_lm"  # e.g. a config written by a newer studio
    panel = ObjectivePanel(session)
    qtbot.addWidget(panel)
    panel.show()
    assert panel.selected() is None
    assert "does not know" in panel.status.text()

    causal = panel.buttons["causal_lm"]
    with qtbot.waitSignal(session.configChanged, timeout=1000):
        qtbot.mouseClick(causal, Qt.MouseButton.LeftButton, pos=QPoint(8, causal.height() // 2))
    assert session.config.objective.name == "causal_lm"
    assert causal.isChecked() and panel.selected() == "causal_lm"
    assert "Causal language modelling" in panel.status.text()


def test_later_objectives_are_greyed_out(qtbot, tmp_path):
    session = Session(workspace_path=str(tmp_path))
    panel = ObjectivePanel(session)
    qtbot.addWidget(panel)
    assert panel.buttons["causal_lm"].isChecked()
    for name in ("masked_lm", "prefix_lm", "span_corruption"):
        button = panel.buttons[name]
        assert not button.isEnabled()
        assert "coming later" in button.text()
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton, pos=QPoint(8, button.height() // 2))
    assert session.config.objective.name == "causal_lm"
    assert "cat" in panel.example.text() and "on" in panel.example.text()
