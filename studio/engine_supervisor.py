"""What supervising the engine decides, without Qt: given the client's state, the clock and the exit code, the
next step.

`studio/engine_client.py` asks `next_step` from its 100 ms timer and carries the answer out (signals, closing
the connection, signalling the process group). The limits and the clock live here, so the decisions are tested
without a window or a process (tests/test_engine_supervisor.py):

- death: the process exited (`exited`), or its connection closed and no exit code came within EOF_EXIT_WAIT_S
  (`eof_dead`);
- hang: no frame for `hang_s` while running (heartbeats arrive every second), or no hello reply within
  `startup_grace_s` (spawn, `import torch`, device set-up) -> `hang`; frames waiting unread mean the GUI was
  busy, not the engine, so no limit applies then;
- a stuck command lane: heartbeats prove only the engine's sender alive. Every PING_EVERY_S the client sends a
  ping (`ping`; protocol 1.10), which the engine's reader answers at once; one unanswered for `hang_s` while
  heartbeats still come -> `hang` with `lane_stuck` set, and only a ping reply ends that hang (a heartbeat does
  not: it is exactly what still arrives);
- ordered stop: after a shutdown request, SIGTERM at TERM_AFTER_S (`term`), SIGKILL of the group at
  `kill_after` (`kill`), and `finish_stop` once the process is gone;
- after a death: `finish_dead` once the exit code is in, `kill` if it has not come within TERM_AFTER_S.
"""

from __future__ import annotations

from dataclasses import dataclass

STARTUP_GRACE_S = 30.0
HANG_S = 10.0
TERM_AFTER_S = 2.0  # after shutdown_request, SIGTERM the group
KILL_AFTER_S = 4.0  # after shutdown_request, SIGKILL the group
EOF_EXIT_WAIT_S = 1.5  # after EOF, how long to wait for the exit code before killing
PING_EVERY_S = 2.0  # how often the command lane is asked to answer
LANE_STUCK = "the engine stopped reading commands (Stop and Pause would not reach it), though its heartbeat still comes"

WAIT = ("wait", "")


@dataclass
class Watch:
    """The clock of one engine process: when things happened, and which signals a stop has sent."""

    hang_s: float = HANG_S
    startup_grace_s: float = STARTUP_GRACE_S
    started_at: float = 0.0
    last_frame: float = 0.0
    eof_at: float | None = None
    dead_at: float = 0.0
    stop_at: float | None = None
    kill_after: float = KILL_AFTER_S
    term_sent: bool = False
    kill_sent: bool = False
    pinging: bool = False  # the engine answers pings (protocol 1.10); set after its hello
    ping_sent_at: float | None = None  # the ping not answered yet
    last_ping: float = 0.0  # when the last one was sent
    lane_stuck: bool = False  # the hang is a stuck command lane: only a ping reply ends it

    def started(self, now: float) -> None:
        """A new process: forget the last one's times (the limits stay)."""
        self.started_at = self.last_frame = now
        self.eof_at = self.stop_at = self.ping_sent_at = None
        self.term_sent = self.kill_sent = self.pinging = self.lane_stuck = False
        self.last_ping = now

    def ping_sent(self, now: float) -> None:
        self.last_ping = now
        if self.ping_sent_at is None:
            self.ping_sent_at = now

    def ping_answered(self) -> None:
        self.ping_sent_at = None
        self.lane_stuck = False


def next_step(
    state: str, watch: Watch, now: float, exit_code: int | None, *, frames_waiting: bool, hello_seen: bool
) -> tuple[str, str]:
    """(step, reason): wait, quiet (nothing left to watch), finish_dead, finish_stop, exited, eof_dead, term, kill,
    ping (send one now) or hang (`watch.lane_stuck` says which kind). A stop's term and kill are marked on `watch` when asked for, so each is asked once."""
    if state == "dead":
        if exit_code is not None:
            return ("finish_dead", "")
        return ("kill", "") if now - watch.dead_at > TERM_AFTER_S else WAIT
    if state == "stopped":
        return ("quiet", "")
    if exit_code is not None:
        return ("finish_stop", "") if state == "stopping" else ("exited", "")
    if state == "stopping":
        return _stopping(watch, now)
    if watch.eof_at is not None:
        return ("eof_dead", "") if now - watch.eof_at >= EOF_EXIT_WAIT_S else WAIT
    if state == "hung" and watch.lane_stuck and not frames_waiting:
        return ("ping", "") if now - watch.last_ping >= PING_EVERY_S else WAIT  # a lost ping must not keep it hung
    if state not in ("starting", "ready") or frames_waiting:
        return WAIT  # hung already, or frames wait unread: the event loop was busy, not the engine
    if not hello_seen:
        if now - watch.started_at > watch.startup_grace_s:
            return ("hang", f"the engine did not answer within {watch.startup_grace_s:.0f} s of starting")
    elif now - watch.last_frame > watch.hang_s:
        return ("hang", f"no heartbeat from the engine for {watch.hang_s:.0f} s")
    elif watch.pinging:
        return _command_lane(watch, now)
    return WAIT


def _command_lane(watch: Watch, now: float) -> tuple[str, str]:
    if watch.ping_sent_at is not None and now - watch.ping_sent_at > watch.hang_s:
        watch.lane_stuck = True
        return ("hang", LANE_STUCK)
    return ("ping", "") if now - watch.last_ping >= PING_EVERY_S else WAIT


def _stopping(watch: Watch, now: float) -> tuple[str, str]:
    elapsed = now - (watch.stop_at or now)
    if elapsed >= watch.kill_after and not watch.kill_sent:
        watch.kill_sent = True
        return ("kill", "")
    if elapsed >= TERM_AFTER_S and not watch.term_sent:
        watch.term_sent = True
        return ("term", "")
    return WAIT
