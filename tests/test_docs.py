"""The documents match the code: PROTOCOL.md describes every message the protocol registers, with every field,
and the README and docs/ point only at things inside the repository.

The message list is read from engine/protocol.py's registry (what decode_batch knows), never typed here, so a
new kind or field fails this test until PROTOCOL.md describes it."""

import dataclasses
import re
from pathlib import Path

from engine import protocol as p

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PROTOCOL_MD = DOCS / "PROTOCOL.md"
DESIGN_MD = DOCS / "DESIGN.md"
# Fields every message or reply has; PROTOCOL.md describes them once, in the envelope.
ENVELOPE_FIELDS = {f.name for f in dataclasses.fields(p.Reply)}
TOP_DIRS = ("engine", "studio", "tests", "bench", "tools", "docs", "resources")
CODE_DIRS = ("engine", "studio", "tests", "bench", "tools")
# Pointers at design notes that live outside this repository (or used to).
OUTSIDE_DESIGN = ("shared/DESIGN", "docs/briefs")
# This machine's own folders, which a reader's checkout does not have.
MACHINE_PATHS = re.compile(r"(?<![\w.~])(/work/|/home/|/root/|/Users/|[A-Z]:\\)")
MD_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def registered() -> dict[str, type]:
    """Every message kind the protocol can decode, with its class."""
    return dict(p._REGISTRY)


def sections(text: str) -> dict[str, str]:
    """Level-3 sections named by one backticked kind ("### `hello_request`"): kind -> the section's text."""
    out: dict[str, str] = {}
    heads = list(re.finditer(r"^(#{1,3}) (.*)$", text, flags=re.M))
    for i, h in enumerate(heads):
        m = re.fullmatch(r"`([a-z_]+)`", h.group(2).strip())
        if len(h.group(1)) == 3 and m:
            end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
            out[m.group(1)] = text[h.end() : end]
    return out


def table_names(section: str) -> list[str]:
    """The backticked names in the first column of a section's field table."""
    return re.findall(r"^\|\s*`([A-Za-z_]+)`\s*\|", section, flags=re.M)


def own_fields(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.name not in ENVELOPE_FIELDS]


def test_the_registry_is_what_the_protocol_decodes():
    kinds = registered()
    # Guards the guard: an empty or foreign registry would make every check below pass.
    assert {"hello_request", "hello_reply", "train_request", "status", "heartbeat"} <= set(kinds)
    for kind, cls in kinds.items():
        assert cls.kind == kind
        assert type(p.decode_batch(p.encode_batch([cls()]))[0]) is cls


def test_every_message_kind_has_its_section_in_protocol_md():
    documented = sections(PROTOCOL_MD.read_text(encoding="utf-8"))
    missing = sorted(set(registered()) - set(documented))
    assert not missing, f"docs/PROTOCOL.md has no '### `kind`' section for: {', '.join(missing)}"
    stale = sorted(set(documented) - set(registered()))
    assert not stale, f"docs/PROTOCOL.md describes kinds engine/protocol.py does not register: {', '.join(stale)}"


def test_every_field_of_every_message_is_in_its_section():
    documented = sections(PROTOCOL_MD.read_text(encoding="utf-8"))
    problems = []
    for kind, cls in sorted(registered().items()):
        text = documented.get(kind, "")
        missing = [name for name in own_fields(cls) if f"`{name}`" not in text]
        if missing:
            problems.append(f"{kind} lacks {', '.join(missing)}")
        known = set(own_fields(cls)) | ENVELOPE_FIELDS
        unknown = [name for name in table_names(text) if name not in known]
        if unknown:
            problems.append(f"{kind} lists fields it does not have: {', '.join(unknown)}")
    assert not problems, "docs/PROTOCOL.md is out of step with engine/protocol.py:\n" + "\n".join(problems)


def test_protocol_md_names_the_current_version_and_the_envelope():
    text = PROTOCOL_MD.read_text(encoding="utf-8")
    assert f"`{p.PROTOCOL_VERSION}`" in text, f"PROTOCOL.md should say the version is {p.PROTOCOL_VERSION}"
    for name in sorted(ENVELOPE_FIELDS) + ["kind", "v", "msgs"]:
        assert f"`{name}`" in text, f"PROTOCOL.md does not describe the envelope field {name}"
    for number in (p.MAX_BATCH, p.BINARY_MAGIC.decode()):
        assert str(number) in text


def _documents() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def test_readme_and_docs_point_only_inside_the_repository():
    problems = []
    for doc in _documents():
        text = doc.read_text(encoding="utf-8")
        rel = doc.relative_to(ROOT)
        for needle in ("../shared", *OUTSIDE_DESIGN):
            if needle in text:
                problems.append(f"{rel} mentions {needle}")
        for m in MACHINE_PATHS.finditer(text):
            problems.append(f"{rel} names a path of this machine: {text[m.start() : m.start() + 40]!r}")
        for target in MD_LINK.findall(text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a web address or an anchor in the same page
            path = (doc.parent / target.split("#")[0]).resolve()
            if not path.is_relative_to(ROOT):
                problems.append(f"{rel} links outside the repository: {target}")
            elif not path.exists():
                problems.append(f"{rel} links to a file that does not exist: {target}")
    assert not problems, "\n".join(problems)


def test_files_the_design_documents_name_exist():
    problems = []
    for doc in (DESIGN_MD, PROTOCOL_MD):
        for token in re.findall(r"`([^`\s]+)`", doc.read_text(encoding="utf-8")):
            token = token.rstrip(".,:;")
            if token.split("/")[0] not in TOP_DIRS or "/" not in token or re.search(r"[<*…]", token):
                continue
            if not (ROOT / token).exists():
                problems.append(f"{doc.name} names {token}, which is not in the repository")
    assert not problems, "\n".join(problems)


def test_code_comments_point_at_the_design_in_the_repository():
    problems = []
    for top in CODE_DIRS:
        for path in sorted((ROOT / top).rglob("*.py")):
            if path == Path(__file__).resolve():
                continue  # this file names them to look for them
            text = path.read_text(encoding="utf-8")
            for needle in OUTSIDE_DESIGN:
                if needle in text:
                    problems.append(f"{path.relative_to(ROOT)} points at {needle}")
    assert not problems, "\n".join(problems)


def test_ci_runs_the_test_command_the_readme_gives():
    """.ci/run must call the README's test command (checks included), so a green CI means what the README says."""
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, re.S)
    command = next(b.strip() for b in blocks if "pytest" in b and "pip install" in b)
    ci = (root / ".ci" / "run").read_text(encoding="utf-8")
    assert command in ci.splitlines()
    for check in ("ruff check", "ruff format --check", "lint-imports", "mypy", "python -m pytest"):
        assert check in command
