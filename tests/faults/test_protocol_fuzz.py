"""The protocol under fuzzing (issue 12): random bytes, random JSON and valid requests with every field replaced
by random values, sent to one live engine; after each batch it still answers a hello and a stop. Requests that
would write or start long work (train, import, delete, open a workspace, shut down, ...) are left out: their
checks are tested one by one elsewhere, and a fuzzer must not fill the disk or train for minutes."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import protocol as p
from tests.engine_harness import EngineProcess

WRITES = {"train_request", "import_request", "tokenizer_train_request", "delete_request", "rename_request",
          "restore_request", "trash_request", "workspace_request", "shutdown_request", "tokenizer_export_request"}  # fmt: skip
KINDS = sorted(k for k in p._REGISTRY if k not in WRITES)
FIELDS = {k: [f for f in p._REGISTRY[k].__dataclass_fields__ if f not in ("buffers",)] for k in KINDS}

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def mutated_message(draw) -> dict:
    kind = draw(st.sampled_from(KINDS))
    names = FIELDS[kind]
    chosen = draw(st.lists(st.sampled_from(names), max_size=len(names), unique=True)) if names else []
    return {"kind": kind, "id": draw(st.text(max_size=6)), **{n: draw(values) for n in chosen}}


frames = st.one_of(
    st.binary(max_size=200),
    st.integers(1, 200_000).map(
        lambda n: b'{"v": "%s", "msgs": ' % p.PROTOCOL_VERSION.encode() + b"[" * n + b"]" * n + b"}"
    ),
    values.map(lambda v: json.dumps(v, allow_nan=True).encode()),
    st.lists(mutated_message(), min_size=1, max_size=4).map(
        lambda msgs: json.dumps({"v": p.PROTOCOL_VERSION, "msgs": msgs}, allow_nan=True).encode()
    ),
)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    eng = EngineProcess(tmp_path_factory.mktemp("fuzz") / "ws")
    assert eng.request(p.HelloRequest(), 60).ok
    yield eng
    eng.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(frames, min_size=1, max_size=5))
def test_after_any_frames_the_engine_answers_a_hello_and_a_stop(engine, batch):
    for frame in batch:
        engine.conn.send_bytes(frame)
    assert engine.request(p.HelloRequest(), 30).ok
    stop = engine.request(p.ControlRequest(action="stop"), 30)
    assert stop.ok or "nothing to stop" in stop.error
    engine.inbox.clear()
