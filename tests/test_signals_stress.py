"""Guard: PySide6 6.12.0 aborted CPython 3.11 after a few hundred Signal.emit / QTimer.singleShot calls
(`Fatal Python error: bool_dealloc`, docs/DESIGN.md). If a bad binding is installed, this test dies loudly."""

from PySide6.QtCore import QObject, QTimer, Signal

from engine import protocol as p
from studio.session import Session

N = 5000


class Emitter(QObject):
    value = Signal(object)
    pair = Signal(int, list)
    flag = Signal(bool)


def test_many_emits_and_single_shots(qtbot):
    e = Emitter()
    got, pairs, flags = [], [], []
    e.value.connect(got.append)
    e.pair.connect(lambda i, rows: pairs.append(i))
    e.flag.connect(flags.append)
    for i in range(N):
        e.value.emit({"i": i, "ok": True})
        e.pair.emit(i, [i, None, True])
        e.flag.emit(i % 2 == 0)
    assert len(got) == len(pairs) == len(flags) == N and got[-1]["i"] == N - 1 and flags[:2] == [True, False]

    fired = []
    for i in range(2000):
        QTimer.singleShot(0, lambda i=i: fired.append(i))
    qtbot.waitUntil(lambda: len(fired) == 2000, timeout=10_000)
    assert fired == sorted(fired)


def test_session_routes_thousands_of_broadcasts(qtbot, tmp_path):
    s = Session(str(tmp_path / "ws"))
    rows, evals, states = [], [], []
    s.metricsReceived.connect(lambda run, r: rows.extend(r))
    s.evalReceived.connect(evals.append)
    s.statusReceived.connect(states.append)
    for batch in range(200):
        msgs = [p.Metrics(run=1, rows=[{"step": batch * 20 + k, "loss": 1.0}]) for k in range(20)]
        msgs += [
            p.Eval(run=1, step=batch, val_loss=2.0),
            p.Status(state="training", run=1, step=batch),
            p.Heartbeat(state="training"),
        ]
        s.deliver(msgs)
    assert len(rows) == 4000 and [r["step"] for r in rows] == list(range(4000))
    assert len(evals) == len(states) == 200 and s.engine_state == "training"
