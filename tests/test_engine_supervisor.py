"""Supervision's decisions without Qt or a process (studio/engine_supervisor.py): when the engine counts as
dead, hung or stopped, and when a stop escalates. The real engine is supervised in tests/test_engine_client.py."""

import subprocess
import sys

from studio.engine_supervisor import EOF_EXIT_WAIT_S, LANE_STUCK, PING_EVERY_S, TERM_AFTER_S, Watch, next_step


def step(state, watch, now, code=None, waiting=False, hello=True):
    return next_step(state, watch, now, code, frames_waiting=waiting, hello_seen=hello)


def test_a_silent_engine_is_hung_after_its_limit_unless_frames_wait_unread():
    w = Watch(hang_s=10)
    w.started(100.0)
    assert step("ready", w, 109.0) == ("wait", "")
    assert step("ready", w, 111.0) == ("hang", "no heartbeat from the engine for 10 s")
    assert step("ready", w, 111.0, waiting=True) == ("wait", "")  # the GUI was busy, not the engine
    assert step("hung", w, 200.0) == ("wait", "")  # said once; a later frame clears it
    w.last_frame = 150.0
    assert step("ready", w, 155.0) == ("wait", "")


def test_start_up_gets_its_own_grace_before_the_hello():
    w = Watch(hang_s=10, startup_grace_s=30)
    w.started(0.0)
    assert step("starting", w, 20.0, hello=False) == ("wait", "")
    assert step("starting", w, 31.0, hello=False)[0] == "hang"
    assert "did not answer within 30 s of starting" in step("starting", w, 31.0, hello=False)[1]


def test_an_exit_is_a_death_except_while_stopping():
    w = Watch()
    assert step("ready", w, 1.0, code=-9) == ("exited", "")
    assert step("stopping", w, 1.0, code=0) == ("finish_stop", "")
    assert step("dead", w, 1.0, code=1) == ("finish_dead", "")
    assert step("stopped", w, 1.0) == ("quiet", "")


def test_a_closed_connection_without_an_exit_code_is_a_death_after_a_short_wait():
    w = Watch()
    w.started(0.0)
    w.eof_at = 10.0
    assert step("ready", w, 10.0 + EOF_EXIT_WAIT_S / 2) == ("wait", "")
    assert step("ready", w, 10.0 + EOF_EXIT_WAIT_S) == ("eof_dead", "")


def test_a_stop_escalates_to_term_then_kill_once_each():
    w = Watch(kill_after=4.0)
    w.started(0.0)
    w.stop_at = 100.0
    assert step("stopping", w, 101.0) == ("wait", "")
    assert step("stopping", w, 100.0 + TERM_AFTER_S) == ("term", "")
    assert step("stopping", w, 103.0) == ("wait", "")  # asked once
    assert step("stopping", w, 104.0) == ("kill", "")
    assert step("stopping", w, 109.0) == ("wait", "")


def test_a_dead_engine_that_does_not_exit_is_killed():
    w = Watch()
    w.dead_at = 50.0
    assert step("dead", w, 51.0) == ("wait", "")
    assert step("dead", w, 50.0 + TERM_AFTER_S + 0.1) == ("kill", "")


def test_a_new_process_forgets_the_last_ones_clock_but_keeps_the_limits():
    w = Watch(hang_s=1.5)
    w.started(0.0)
    w.eof_at, w.stop_at, w.term_sent, w.kill_sent = 5.0, 6.0, True, True
    w.started(100.0)
    w.pinging, w.ping_sent_at, w.lane_stuck = True, 7.0, True
    w.started(100.0)
    assert (w.eof_at, w.stop_at, w.term_sent, w.kill_sent) == (None, None, False, False)
    assert (w.pinging, w.ping_sent_at, w.lane_stuck) == (False, None, False)
    assert w.hang_s == 1.5 and w.last_frame == 100.0


def test_the_command_lane_is_pinged_and_a_ping_unanswered_while_heartbeats_come_is_a_hang():
    w = Watch(hang_s=10)
    w.started(0.0)
    assert step("ready", w, PING_EVERY_S + 0.1) == ("wait", "")  # an engine older than 1.10 is never pinged
    w.pinging = True
    assert step("ready", w, 1.0) == ("wait", "")
    assert step("ready", w, PING_EVERY_S) == ("ping", "")
    w.ping_sent(PING_EVERY_S)
    for now in (4.0, 6.0, 8.0, 10.0, 12.0):  # heartbeats keep coming, the ping stays unanswered
        w.last_frame = now
        if step("ready", w, now)[0] == "ping":
            w.ping_sent(now)
    assert w.ping_sent_at == PING_EVERY_S  # the oldest unanswered one counts
    w.last_frame = 12.5
    assert step("ready", w, 12.5) == ("hang", LANE_STUCK)
    assert w.lane_stuck
    assert step("hung", w, 13.0) == ("wait", "")  # said once; pinging goes on, since a ping may have been lost
    assert step("hung", w, 12.0 + PING_EVERY_S) == ("ping", "")
    w.ping_answered()
    assert not w.lane_stuck and w.ping_sent_at is None
    assert step("ready", w, 13.0) == ("wait", "")


def test_a_busy_window_never_counts_its_own_unread_ping_replies_against_the_engine():
    w = Watch(hang_s=10)
    w.started(0.0)
    w.pinging = True
    w.ping_sent(2.0)
    w.last_frame = 20.0
    assert step("ready", w, 20.0, waiting=True) == ("wait", "")


def test_the_supervisor_loads_no_qt():
    code = "import sys, studio.engine_supervisor; print(any(m.startswith('PySide6') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
