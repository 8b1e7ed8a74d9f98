"""What the model sees: sample_batch draws a real batch of a dataset as the config's objective builds it, before
any run exists and writing nothing; its marks say what the corruption did at the configured rates; the engine
answers sample_batch_request while a run trains. Real workspaces, tokenizers and engine."""

import pytest

from engine import protocol as p
from engine.config import ConfigError, preset
from engine.objectives.sample_view import sample_batch
from engine.store import Workspace

TEXT = "".join(
    f"{who}: the {a} {b} sat on the {c} mat. Did it? It did!\n\n"
    for who in ("ANNA", "BEN", "CLARA")
    for a in ("red", "big", "old")
    for b in ("cat", "dog", "fox")
    for c in ("warm", "cold", "soft")
)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    path = root / "mats.txt"
    path.write_text(TEXT * 4, encoding="utf-8")
    w = Workspace(root / "ws")
    w.import_dataset([path], "mats", 0.1)
    yield w
    w.close()


def config(objective="causal_lm", arch="decoder", block=64, **options):
    cfg = preset("tiny").with_overrides(["data.dataset=mats", f"model.block_size={block}", f"model.arch={arch}"])
    cfg.objective.name = objective
    cfg.model.n_segments = 2 if objective in ("nsp", "sop", "masked_lm+nsp", "masked_lm+sop") else 0
    for key, value in options.items():
        setattr(cfg.objective, key, value)
    return cfg


def spans(rows, side="input"):
    return [s for r in rows for s in (r[side] or [])]


def share(items, pred) -> float:
    items = list(items)
    return sum(map(pred, items)) / len(items)


def test_causal_lm_predicts_every_token_but_the_first_and_writes_nothing(ws):
    before = (ws.tokenizers(), ws.runs(), sorted(ws.path.rglob("*")))
    shown = sample_batch(ws, config(), n=3, max_tokens=20)
    assert shown["objective"] == "causal_lm" and len(shown["rows"]) == 3
    for row in shown["rows"]:
        assert len(row["input"]) == 20 and row["target"] is None and row["label"] is None
        assert [s["loss"] for s in row["input"]] == [False] + [True] * 19
        assert {s["mark"] for s in row["input"]} == {"kept"}
        assert "".join(s["text"] for s in row["input"]).replace("␣", " ").replace("⏎", "\n") in TEXT * 2
    # No vocabulary yet: characters of the text, and the note says what a run does.
    assert "'mats' has no char vocabulary yet" in shown["note"] and "first 20 tokens" in shown["note"]
    assert (ws.tokenizers(), ws.runs(), sorted(ws.path.rglob("*"))) == before


def test_the_seed_draws_the_batch(ws):
    one = sample_batch(ws, config("masked_lm", "encoder"), seed=1)
    assert sample_batch(ws, config("masked_lm", "encoder"), seed=1) == one
    assert sample_batch(ws, config("masked_lm", "encoder"), seed=2)["rows"] != one["rows"]


def test_masked_lm_marks_its_share_of_tokens_and_the_80_10_10_split(ws):
    shown = sample_batch(ws, config("masked_lm", "encoder", block=128), n=32, max_tokens=0)
    inputs, targets = spans(shown["rows"]), spans(shown["rows"], "target")
    assert len(inputs) == len(targets) == 32 * 128
    chosen = [s for s in inputs if s["loss"]]
    assert share(inputs, lambda s: s["loss"]) == pytest.approx(0.15, abs=0.015)
    assert share(chosen, lambda s: s["mark"] == "masked") == pytest.approx(0.8, abs=0.05)
    assert share(chosen, lambda s: s["mark"] == "random") == pytest.approx(0.1, abs=0.04)
    assert all(s["text"] == "[MASK]" for s in chosen if s["mark"] == "masked")
    assert not any(t["text"] == "[MASK]" for t in targets)  # the target row is the original text
    assert shown["note"].endswith("a run first trains a character vocabulary with [MASK].")


def test_masked_lm_follows_its_options(ws):
    shown = sample_batch(
        ws,
        config("masked_lm", "encoder", block=128, mask_prob=0.4, mask_token_share=1.0, random_token_share=0.0),
        n=16,
        max_tokens=0,
    )
    inputs = spans(shown["rows"])
    assert share(inputs, lambda s: s["loss"]) == pytest.approx(0.4, abs=0.03)
    assert {s["mark"] for s in inputs if s["loss"]} == {"masked"}


def test_span_corruption_hides_its_density_behind_sentinels(ws):
    shown = sample_batch(ws, config("span_corruption", "encoder-decoder", block=128), n=16, max_tokens=0)
    for row in shown["rows"]:
        sent_in = [s["text"] for s in row["input"] if s["mark"] == "sentinel"]
        sent_out = [s["text"] for s in row["target"] if s["mark"] == "sentinel"]
        assert sent_in == sent_out == [f"<extra_id_{i}>" for i in range(len(sent_in))] and sent_in
        assert all(s["loss"] for s in row["target"])
    hidden = len([s for s in spans(shown["rows"], "target") if s["mark"] == "masked"])
    kept = len([s for s in spans(shown["rows"]) if s["mark"] == "kept"])
    assert hidden / (hidden + kept) == pytest.approx(0.15, abs=0.03)


def test_denoising_permutation_and_pairs_show_what_they_do(ws):
    denoised = sample_batch(ws, config("denoising", "encoder-decoder", noises="token_deletion"), n=16, max_tokens=0)
    deleted = [s for s in spans(denoised["rows"], "target") if s["mark"] == "deleted"]
    assert share(spans(denoised["rows"], "target"), lambda s: s["mark"] == "deleted") == pytest.approx(0.3, abs=0.05)
    assert deleted and not any(s["mark"] == "deleted" for s in spans(denoised["rows"]))

    perm = sample_batch(ws, config("permutation_lm", block=60), n=16, max_tokens=0)
    predicted = [s for s in spans(perm["rows"]) if s["loss"]]
    assert share(spans(perm["rows"]), lambda s: s["loss"]) == pytest.approx(1 / 6, abs=0.02)
    assert all(s["order"] is not None for s in predicted)

    pairs = sample_batch(ws, config("nsp", "encoder"), n=32)
    labels = [r["label"] for r in pairs["rows"]]
    assert set(labels) == {"B follows A", "B is from elsewhere"}
    assert all(r["input"][0]["text"] == "[CLS]" for r in pairs["rows"])


def test_a_vocabulary_of_the_dataset_is_used_and_a_chosen_one_without_mask_is_warned_of(ws):
    row = ws.train_tokenizer("mats", "bpe", 300, name="mats bpe")
    shown = sample_batch(ws, config("causal_lm").with_overrides(["tokenizer.kind=bpe", "tokenizer.vocab_size=300"]))
    assert shown["note"] == "Each sequence is cut to its first 48 tokens."
    assert any(len(s["text"]) > 1 for s in spans(shown["rows"]))  # BPE tokens, not characters
    masked = sample_batch(ws, config("masked_lm", "encoder").with_overrides(["tokenizer.kind=bpe"]))
    assert masked["note"].startswith("This sample adds [MASK] to 'mats bpe' (in memory), as a run's own vocabulary")
    chosen = sample_batch(ws, config("masked_lm", "encoder").with_overrides([f"tokenizer.tokenizer={row['id']}"]))
    assert chosen["note"].startswith("Masked language modelling needs the special token [MASK], which the vocabulary")
    assert any(s["text"] == "[MASK]" for s in spans(chosen["rows"]))
    assert ws.load_tokenizer(row["id"]).token_to_id("[MASK]") is None  # only the sample's copy has it


def test_bad_combinations_are_config_errors_in_the_panels_words(ws):
    with pytest.raises(ConfigError, match="Masked language modelling trains an encoder model, not a decoder"):
        sample_batch(ws, config("masked_lm", "decoder"))
    cfg = config("span_corruption", "encoder-decoder", block=4)
    with pytest.raises(ConfigError, match="too short for span corruption"):
        sample_batch(ws, cfg)


@pytest.mark.slow
def test_the_engine_answers_a_sample_batch_while_a_run_trains(tmp_path):
    from engine.worker import Engine
    from engine.worker_objectives import ObjectiveHandlers
    from tests.engine_harness import EngineProcess

    if not issubclass(Engine, ObjectiveHandlers):
        pytest.skip("engine/worker.py does not serve sample batches yet (Engine lacks ObjectiveHandlers)")
    eng = EngineProcess(tmp_path / "ws")
    try:
        hello = eng.request(p.HelloRequest())
        sample = next(d for d in hello.workspace["datasets"] if d["name"] == "sample")
        cfg = config().with_overrides(
            [
                f"data.dataset={sample['id']}",
                "model.n_layer=1",
                "model.n_embd=32",
                "model.n_head=2",
                "model.block_size=16",
                "train.batch_size=4",
                "train.max_iters=100000",
                "train.eval_interval=1000",
            ]
        )
        assert eng.request(p.TrainRequest(config=cfg.to_dict())).ok
        eng.wait_for(lambda m: isinstance(m, p.Metrics) and m.rows[-1]["step"] >= 3)
        masked = config("masked_lm", "encoder").with_overrides([f"data.dataset={sample['id']}"])
        reply = eng.request(p.SampleBatchRequest(config=masked.to_dict(), n=2, seed=3), timeout=20)
        assert reply.ok and reply.objective == "masked_lm" and len(reply.rows) == 2
        assert any(s["mark"] == "masked" for r in reply.rows for s in r["input"])
        bad = eng.request(p.SampleBatchRequest(config=config("masked_lm").to_dict()))
        assert not bad.ok and bad.field == "objective.name" and "trains an encoder model" in bad.error
        assert eng.request(p.ControlRequest(action="stop")).ok
    finally:
        eng.close()
