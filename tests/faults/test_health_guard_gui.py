"""The health guard in the window (issue 12, item 8): a run that really diverges (learning rate 3, clipping off)
pauses at its last good checkpoint with a banner saying what probably happened; Apply and resume sends the
suggestion to the engine, which resumes with it, and the run ends well, its curve without the diverged stretch."""

from engine.store import Workspace
from tests.conftest import open_studio
from tests.faults.test_health_guard import _cfg
from tests.faults.conftest import lines_workspace


def shown(widget) -> bool:
    return not widget.isHidden()  # the Train panel itself may be behind another one


def test_the_banner_explains_a_divergence_and_one_click_applies_the_advice(qtbot, qsettings, tmp_path):
    path = lines_workspace(tmp_path)
    cfg = _cfg(learning_rate=3.0, min_lr=0.0, grad_clip=0.0, max_iters=200, lr_decay_iters=200)
    with open_studio(qtbot, qsettings, path) as (win, session):
        try:
            train = win.panels["train"]
            win.show_page("train")
            train.start_config(cfg)
            banner = train.divergence
            qtbot.waitUntil(lambda: shown(banner), timeout=60_000)
            assert "Gradient clipping is off" in banner.text.text()
            assert "Went back to step 0, the last good checkpoint" in banner.text.text()
            assert "Gradient clipping 0 → 1" in banner.apply_button.toolTip()
            assert train.pause_button.text() == "Resume"  # going on as it was stays possible
            qtbot.waitUntil(lambda: "paused, 0 / 200 steps" in train.run_caption.text(), timeout=5_000)
            run_id = train.curves.run_id
            clicks = 0
            while session.find("runs", run_id).get("status") != "finished":
                qtbot.waitUntil(
                    lambda: (
                        shown(banner)
                        and banner.apply_button.isEnabled()
                        or session.find("runs", run_id).get("status") == "finished"
                    ),
                    timeout=60_000,
                )
                if shown(banner) and banner.apply_button.isEnabled():
                    clicks += 1
                    before = banner.advice
                    banner.apply_button.click()
                    # Resumed (hidden), or resumed and diverged again at once (the next advice).
                    qtbot.waitUntil(lambda: not shown(banner) or banner.advice is not before, timeout=10_000)
                assert clicks <= 3
            assert 1 <= clicks
            assert train.curves.steps[-1] == 200 and max(train.curves.loss) < 10
        finally:  # a failed check must not leave a training that the closing window would ask about
            if session.is_training:
                session.control("stop")
                qtbot.waitUntil(lambda: not session.is_training, timeout=30_000)
    with Workspace(path) as ws:
        assert ws.run(run_id)["config"]["train"]["grad_clip"] == 1.0
