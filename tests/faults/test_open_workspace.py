"""A failed Open Workspace leaves the engine on the workspace it had (issue 12, item 6): the switch happens only
once the new folder opened, so the engine and the window never disagree about where the user's work is."""

import sqlite3

from engine import protocol as p
from tests.engine_harness import EngineProcess


def test_a_folder_that_cannot_be_opened_leaves_the_engine_where_it_was(tmp_path):
    good = tmp_path / "good"
    eng = EngineProcess(good)
    try:
        before = eng.request(p.WorkspaceRequest())
        assert before.ok
        bad = tmp_path / "bad"
        bad.mkdir()
        (bad / "workspace.db").write_bytes(b"this is not a database" * 100)  # a corrupt workspace
        reply = eng.request(p.WorkspaceRequest(path=str(bad)))
        assert not reply.ok and reply.error
        after = eng.request(p.WorkspaceRequest())
        assert after.ok and after.workspace["path"] == before.workspace["path"]
    finally:
        eng.close()
    with sqlite3.connect(good / "workspace.db") as con:  # the good one is whole
        assert con.execute("pragma integrity_check").fetchone() == ("ok",)
