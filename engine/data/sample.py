"""A built-in sample corpus, generated here so a new user can train at once with nothing downloaded.

It is a little play: scenes in a few places, characters who speak in a "NAME:" format, and a small grammar of
greetings, questions, answers and stage directions. The repeated patterns give a small model something it can
visibly learn within a few hundred steps (names in capitals, colons, line breaks, simple sentences), while the
random choices keep it from memorising the text outright.

The words and the lines people say are data, in resources/sample/ (words.json, lines.json); the shape of an act
and a scene is made here. A seed gives the same corpus byte for byte (tests/test_resources.py pins the default one).
"""

from __future__ import annotations

import functools
import json
import random
from dataclasses import dataclass
from pathlib import Path

from engine.resources import read_json


@dataclass(frozen=True)
class Play:
    """What the play is made of (resources/sample/): the word lists and the lines people say."""

    people: list[str]
    places: list[str]
    things: list[str]
    times: list[str]
    feelings: list[str]
    weather: list[str]
    # Templates with {name}, {thing} ({Thing} capitalised), {place}, {feeling} and {time}.
    lines: list[str]


@functools.lru_cache(maxsize=None)
def play() -> Play:
    return Play(**read_json("sample", "words.json"), lines=read_json("sample", "lines.json"))


def _line(r: random.Random, other: str, topic: str) -> str:
    p = play()
    # Most lines keep to the scene's topic, so a scene reads as one small story.
    thing = topic if r.random() < 0.7 else r.choice(p.things)
    place, feeling, name = r.choice(p.places), r.choice(p.feelings), other.capitalize()
    # The time is drawn before the line, whether the line uses it or not: the corpus of a seed stays the same.
    time = r.choice(p.times)
    return r.choice(p.lines).format(
        name=name, thing=thing, Thing=thing.capitalize(), place=place, feeling=feeling, time=time
    )


def _scene(r: random.Random, number: int) -> str:
    p = play()
    place, time, topic = r.choice(p.places), r.choice(p.times), r.choice(p.things)
    cast = r.sample(p.people, r.randint(2, 3))
    names = [name.capitalize() for name in cast]
    lines = [
        f"SCENE {number}. {place.capitalize()}, {time}.",
        "",
        f"[Enter {', '.join(names[:-1])} and {names[-1]}.]",
        "",
    ]
    speaker = cast[0]
    for _ in range(r.randint(4, 9)):
        other = r.choice([c for c in cast if c != speaker])
        lines += [f"{speaker}:", _line(r, other, topic)]
        if r.random() < 0.2:
            lines.append(f"[{r.choice(p.weather)}]")
        lines.append("")
        speaker = other
    lines += ["[Exeunt.]", "", ""]
    return "\n".join(lines)


def sample_scenes(n_chars: int = 300_000, seed: int = 0) -> list[str]:
    """The play as documents, one a scene (an act's title goes with its first scene), about n_chars in all."""
    r = random.Random(seed)
    scenes, size, act = [], 0, 0
    while size < n_chars:
        act += 1
        for n in range(1, r.randint(3, 5) + 1):
            scene = (f"ACT {act}\n\n" if n == 1 else "") + _scene(r, n)
            scenes.append(scene.rstrip("\n") + "\n")
            size += len(scenes[-1]) + 1
            if size >= n_chars:
                break
    return scenes


def sample_text(n_chars: int = 300_000, seed: int = 0) -> str:
    """About n_chars of the play (never more), ending at a line break."""
    text = "\n".join(sample_scenes(n_chars, seed))[:n_chars]
    return text[: text.rfind("\n") + 1] if "\n" in text else text


def write_sample_corpus(path: Path, n_chars: int = 300_000, seed: int = 0) -> None:
    Path(path).write_text(sample_text(n_chars, seed), encoding="utf-8", newline="\n")


def write_sample_scenes(path: Path, n_chars: int = 300_000, seed: int = 0) -> None:
    """The play as JSONL, one scene a record, so the sample dataset has documents (and their lengths) to show."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for scene in sample_scenes(n_chars, seed):
            f.write(json.dumps({"text": scene}, ensure_ascii=False) + "\n")
