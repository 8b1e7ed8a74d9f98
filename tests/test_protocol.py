import json

import pytest

from engine import protocol as p


def test_batch_round_trip_keeps_kinds_fields_and_parents():
    req = p.TrainRequest(config={"model": {"n_layer": 2}}, name="r")
    reply = p.TrainReply(parent=req.id, run={"id": 3})
    msgs = p.decode_batch(p.encode_batch([req, reply, p.Metrics(run=3, rows=[{"step": 1, "loss": 4.1}])]))
    assert [type(m) for m in msgs] == [p.TrainRequest, p.TrainReply, p.Metrics]
    assert msgs[0] == req and msgs[1].parent == req.id and msgs[1].ok
    assert msgs[2].rows[0]["loss"] == 4.1


def test_unknown_kinds_and_extra_fields_from_a_newer_peer_are_ignored():
    frame = json.dumps(
        {
            "v": "1.8",
            "msgs": [
                {"kind": "telepathy", "id": "x"},
                {"kind": "status", "id": "y", "state": "training", "mood": "happy"},
            ],
        }
    ).encode()
    unknown, status = p.decode_batch(frame)
    assert isinstance(unknown, p.Unknown) and unknown.kind_name == "telepathy"
    assert isinstance(status, p.Status) and status.state == "training"


def test_major_version_mismatch_and_garbage_are_protocol_errors():
    with pytest.raises(p.ProtocolError, match="protocol 2.0"):
        p.decode_batch(json.dumps({"v": "2.0", "msgs": []}).encode())
    with pytest.raises(p.ProtocolError, match="malformed"):
        p.decode_batch(b"\x80\x03pickle?")


def test_error_reply_matches_the_request_kind():
    req = p.ImportRequest(paths=["/nope"])
    err = p.error_reply(req, "no such file or folder: /nope")
    assert isinstance(err, p.ImportReply) and not err.ok and err.parent == req.id
    assert "no such file" in err.error


def test_every_request_has_a_reply_type():
    kinds = set(p._REGISTRY)
    for kind in kinds:
        if kind.endswith("_request"):
            assert kind.replace("_request", "_reply") in kinds, kind


def test_frames_are_json_not_pickle():
    data = p.encode_batch([p.HelloRequest()])
    assert json.loads(data)["msgs"][0]["kind"] == "hello_request"


def test_array_buffers_travel_in_a_binary_frame_beside_json_messages():
    weights = bytes(range(256)) * 40
    msgs = [p.Log(message="before"), p.Status(state="training", buffers=(weights, b"xy")), p.Log(message="after")]
    frame = p.encode_batch(msgs)
    assert frame[:4] == p.BINARY_MAGIC
    before, status, after = p.decode_batch(frame)
    assert status.buffers == (weights, b"xy") and status.state == "training"
    assert before.message == "before" and after.message == "after" and before.buffers == ()


def test_binary_frame_with_lying_lengths_is_rejected():
    frame = bytearray(p.encode_batch([p.Status(buffers=(b"abcd",))]))
    with pytest.raises(p.ProtocolError, match="malformed"):
        p.decode_batch(bytes(frame[:-2]))


def test_a_request_of_an_unknown_kind_gets_an_error_reply_of_the_kind_its_sender_expects():
    """A newer studio's request must not wait for ever on an older engine: the engine answers under the reply
    kind the studio knows, with a readable error."""
    frame = json.dumps({"v": "1.9", "msgs": [{"kind": "teleport_request", "id": "q1", "where": "moon"}]}).encode()
    (unknown,) = p.decode_batch(frame)
    reply = p.error_reply(unknown, "this engine does not handle teleport_request")
    wire = json.loads(p.encode_batch([reply]))["msgs"][0]
    assert wire["kind"] == "teleport_reply" and wire["parent"] == "q1" and wire["status"] == "error"
    assert "reply_kind" not in wire
    (known,) = p.decode_batch(p.encode_batch([p.error_reply(p.Unknown(kind_name="rename_request", id="q2"), "no")]))
    assert isinstance(known, p.RenameReply) and known.parent == "q2" and not known.ok and known.error == "no"


def test_requests_newer_than_the_peer_are_recognised():
    assert p.too_old_for("rename_request", "1.2") and not p.too_old_for("rename_request", "1.3")
    assert not p.too_old_for("rename_request", "1.10") and not p.too_old_for("train_request", "1.0")


def test_the_state_words_are_listed_once_as_types_and_as_values():
    """The Literal types (for mypy and readers) and the tuples (for code that loops) name the same words; a run's
    states never reuse an engine state's word except "stopped", which both can be (the engine exiting, a run
    stopped by the user) and which `Status.run` tells apart."""
    import typing

    assert typing.get_args(p.EngineState) == p.ENGINE_STATES
    assert typing.get_args(p.RunState) == p.RUN_STATES
    assert typing.get_args(p.RunOutcome) == p.RUN_OUTCOMES
    assert set(p.ENGINE_STATES) & (set(p.RUN_STATES) | set(p.RUN_OUTCOMES)) == {"stopped"}


def test_status_states_reads_the_new_fields_and_an_older_engines_single_state():
    """A 1.5 Status says the engine's state and the run's apart; one from a 1.4 engine (no engine_state on the
    wire) is read from its `state`: a run's state keeps the engine busy, "stopped" is a run's only with `run`."""
    new = p.Status(state="paused", engine_state="busy", run_state="paused", run=3)
    assert p.status_states(new) == ("busy", "paused")
    assert p.status_states(p.Status(state="idle", engine_state="idle")) == ("idle", None)

    def old(**fields):
        msg = p.decode_message({"kind": "status", "id": "1-1", "step": 0, "max_iters": 0, "message": "", **fields})
        assert isinstance(msg, p.Status) and msg.engine_state is None and msg.run_state is None
        return p.status_states(msg)

    assert old(state="idle") == ("idle", None)
    assert old(state="busy") == ("busy", None)
    assert old(state="training", run=3) == ("busy", "training")
    assert old(state="starting") == ("busy", "starting")  # a run's state, even before its id is known
    assert old(state="finished", run=3) == ("busy", "finished")
    assert old(state="stopped", run=3) == ("busy", "stopped")
    assert old(state="stopped") == ("stopped", None)  # the engine exiting
    assert old(state="teleporting") == (None, None)  # a word this side does not know changes nothing
