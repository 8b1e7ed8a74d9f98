"""Big requests do not block (issue 12, item 11): tokenizing a whole corpus in "Try a text" is refused in words
before any work, a text that fits is tokenized on the side lane, and while a long read-only job runs, Stop and
Pause are still answered at once. A real engine process."""

import time
from pathlib import Path

from engine import protocol as p
from engine.worker_data import MAX_TEXT_CHARS
from tests.engine_harness import EngineProcess

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "data" / "tinyshakespeare.txt"


def test_a_whole_corpus_is_refused_in_words_and_the_lane_stays_free(tmp_path):
    eng = EngineProcess(tmp_path / "ws")
    try:
        hello = eng.request(p.HelloRequest())
        tok = eng.request(p.TokenizerTrainRequest(dataset="sample", tokenizer_kind="char", vocab_size=64), 120)
        assert tok.ok, tok.error
        text = CORPUS.read_text(encoding="utf-8") if CORPUS.exists() else "To be, or not to be. " * 60_000
        started = time.monotonic()
        big = eng.request(p.TokenizeRequest(tokenizer=tok.tokenizer["id"], text=text), 30)
        assert not big.ok and f"reads at most {MAX_TEXT_CHARS:,} characters at a time" in big.error
        assert time.monotonic() - started < 5  # refused before any work, not after 12 s of it
        fits = p.TokenizeRequest(tokenizer=tok.tokenizer["id"], text=text[:MAX_TEXT_CHARS])
        eng.send(fits)
        stop = eng.request(p.ControlRequest(action="stop"), 10)  # answered while the tokenizing runs
        assert "nothing to stop" in stop.error
        reply = eng.wait_for(lambda m: isinstance(m, p.TokenizeReply) and m.parent == fits.id, 60)
        assert reply.ok and len(reply.spans) == MAX_TEXT_CHARS  # a char vocabulary: one token per character
        assert hello.ok
    finally:
        eng.close()
