"""The choices both sides need are defined once (engine/choices.py): the engine checks input against the same
values the studio's forms offer, and the module loads nothing but the standard library."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine import choices
from engine import config as C
from engine.data import cleaning, formats
from engine.data import import_options as importers
from engine.tokenizer import (
    DEFAULT_PRE_TOKENIZER,
    DEFAULT_SPECIALS,
    KINDS,
    NORMALIZERS,
    PRE_TOKENIZERS,
    ROLES,
    TokenizerError,
    TokenizerSpec,
)

ROOT = Path(__file__).resolve().parents[1]


def test_choices_load_only_the_standard_library():
    code = (
        "import json, sys; before = set(sys.modules); import engine.choices; "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    loaded = json.loads(out.stdout)
    assert {m.split(".")[0] for m in loaded} <= {"engine", *sys.stdlib_module_names}, loaded


def test_the_engine_checks_the_same_import_choices():
    assert formats.FORMATS == choices.IMPORT_FORMATS
    assert formats.EXTENSIONS == choices.EXTENSIONS and formats.DEFAULT_GLOBS == choices.DEFAULT_GLOBS
    assert (importers.DOC_UNITS, importers.DECODE_CHOICES, importers.BAD_RECORD_CHOICES, importers.SPLITS) == (
        choices.DOC_UNITS,
        choices.DECODE_CHOICES,
        choices.BAD_RECORD_CHOICES,
        choices.SPLITS,
    )
    defaults = importers.ImportOptions()
    assert (defaults.doc_unit, defaults.on_decode_error, defaults.on_bad_record, defaults.split) == (
        choices.DOC_UNITS[0],
        choices.DECODE_CHOICES[0],
        choices.BAD_RECORD_CHOICES[0],
        choices.SPLITS[0],
    )
    assert cleaning.STEPS == choices.CLEANING_STEPS
    assert (cleaning.NORMAL_FORMS, cleaning.REGEX_ACTIONS) == (choices.NORMAL_FORMS, choices.REGEX_ACTIONS)
    assert set(choices.TABULAR_FORMATS) < set(choices.IMPORT_FORMATS)
    for name in ("a.TXT", "b.csv", "c.tab", "d.ndjson", "e.pq", "f.unknown"):
        assert choices.format_of_extension(name) == formats.detect_format(Path(name))


def test_the_engine_checks_the_same_tokenizer_choices():
    assert KINDS == choices.TOKENIZER_KINDS == C.TOKENIZER_KINDS
    assert ROLES == choices.SPECIAL_ROLES and DEFAULT_SPECIALS == choices.DEFAULT_SPECIALS
    assert (NORMALIZERS, PRE_TOKENIZERS) == (choices.NORMALIZERS, choices.PRE_TOKENIZERS)
    assert DEFAULT_PRE_TOKENIZER == choices.DEFAULT_PRE_TOKENIZER
    for kind in KINDS:
        fixed = choices.FIXED_PRE_TOKENIZER.get(kind)
        for pre in PRE_TOKENIZERS:
            allowed = pre == fixed if fixed else pre not in ("none", "bytelevel")
            if allowed:
                assert TokenizerSpec(kind, 300, pre_tokenizer=pre).pre_tokenizer == pre
            else:
                with pytest.raises(TokenizerError):
                    TokenizerSpec(kind, 300, pre_tokenizer=pre)


def combo_values(combo):
    return [combo.itemData(i) for i in range(combo.count())]


def test_the_studios_forms_offer_the_engines_values(qtbot):
    from studio.widgets.import_options import ImportOptionsForm
    from studio.widgets.tokenizer_options import TokenizerOptionsForm

    form = ImportOptionsForm()
    qtbot.addWidget(form)
    assert combo_values(form.fmt_combo) == [None, *choices.IMPORT_FORMATS]
    assert combo_values(form.doc_unit_combo) == list(choices.DOC_UNITS)
    assert combo_values(form.decode_combo) == list(choices.DECODE_CHOICES)
    assert combo_values(form.bad_record_combo) == list(choices.BAD_RECORD_CHOICES)
    assert combo_values(form.normalize_combo) == [None, *choices.NORMAL_FORMS]
    assert combo_values(form.regex_action_combo) == list(choices.REGEX_ACTIONS)
    assert all(form.fmt_combo.itemText(i) != str(form.fmt_combo.itemData(i)) for i in range(form.fmt_combo.count()))

    tok = TokenizerOptionsForm()
    qtbot.addWidget(tok)
    assert combo_values(tok.kind_combo) == list(choices.TOKENIZER_KINDS)
    assert combo_values(tok.normalizer_combo) == list(choices.NORMALIZERS)
    assert list(tok.special_edits) == list(choices.SPECIAL_ROLES)
    for kind in choices.TOKENIZER_KINDS:
        tok.set_kind(kind)
        assert tok.pre_tokenizer_combo.currentData() == choices.DEFAULT_PRE_TOKENIZER[kind]
        assert tok.special_tokens() == choices.DEFAULT_SPECIALS[kind] and tok.options() == {}
