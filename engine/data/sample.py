"""A built-in sample corpus, generated here so a new user can train at once with nothing downloaded.

It is a little play: scenes in a few places, characters who speak in a "NAME:" format, and a small grammar of
greetings, questions, answers and stage directions. The repeated patterns give a small model something it can
visibly learn within a few hundred steps (names in capitals, colons, line breaks, simple sentences), while the
random choices keep it from memorising the text outright.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

PEOPLE = ["ANNA", "BEN", "CLARA", "DAVID", "ELSA", "FELIX", "GRETA", "HUGO", "IRIS", "JONAS"]
PLACES = ["the harbour", "the old mill", "the market", "the garden", "the bakery", "the lighthouse",
          "the library", "the station", "the bridge", "the orchard"]
THINGS = ["a red boat", "the silver key", "a basket of apples", "the old map", "a letter", "the blue lamp",
          "a loaf of bread", "the brass bell", "a little dog", "the green umbrella"]
TIMES = ["at dawn", "in the morning", "at noon", "in the evening", "at night", "before the rain"]
FEELINGS = ["happy", "tired", "worried", "curious", "cold", "hungry", "glad", "surprised"]
WEATHER = ["The wind is cold.", "The sun is warm.", "It begins to rain.", "The sea is calm.",
           "A bell rings far away.", "Birds sing in the trees."]


def _line(r: random.Random, other: str, topic: str) -> str:
    # Most lines keep to the scene's topic, so a scene reads as one small story.
    thing = topic if r.random() < 0.7 else r.choice(THINGS)
    place, feeling, name = r.choice(PLACES), r.choice(FEELINGS), other.capitalize()
    return r.choice([
        f"Good morning, {name}. Have you seen {thing}?",
        f"I have not seen {thing}, {name}. I was at {place} all day.",
        f"I left {thing} at {place}. Will you come with me?",
        f"Yes, I will come with you to {place}.",
        f"No, {name}. I must stay here and wait.",
        f"Why are you so {feeling}, {name}?",
        f"I am {feeling}, because {thing} is gone.",
        f"Look! {thing.capitalize()} is here, under the table.",
        f"Thank you, {name}. You are a good friend.",
        f"Let us go to {place} {r.choice(TIMES)}.",
        f"Who is there? Is that you, {name}?",
        f"It is only me. I brought you {thing}.",
    ])


def _scene(r: random.Random, number: int) -> str:
    place, time, topic = r.choice(PLACES), r.choice(TIMES), r.choice(THINGS)
    cast = r.sample(PEOPLE, r.randint(2, 3))
    names = [name.capitalize() for name in cast]
    lines = [f"SCENE {number}. {place.capitalize()}, {time}.", "",
             f"[Enter {', '.join(names[:-1])} and {names[-1]}.]", ""]
    speaker = cast[0]
    for _ in range(r.randint(4, 9)):
        other = r.choice([c for c in cast if c != speaker])
        lines += [f"{speaker}:", _line(r, other, topic)]
        if r.random() < 0.2:
            lines.append(f"[{r.choice(WEATHER)}]")
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
