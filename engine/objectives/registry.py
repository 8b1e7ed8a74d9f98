"""objective.name -> its implementation (imported on first use, so listing the catalog never loads torch)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from engine.objectives.catalog import OBJECTIVE_NAMES

if TYPE_CHECKING:
    from engine.config import RunConfig
    from engine.objectives.base import Objective

# name -> "module:class"
_IMPLEMENTATIONS = {
    "causal_lm": "engine.objectives.causal_lm:CausalLM",
    "distillation": "engine.objectives.distillation:Distillation",
    "prefix_lm": "engine.objectives.prefix_lm:PrefixLM",
    "permutation_lm": "engine.objectives.permutation_lm:PermutationLM",
    "masked_lm": "engine.objectives.masked_lm:MaskedLM",
    "span_corruption": "engine.objectives.span_corruption:SpanCorruption",
    "denoising": "engine.objectives.denoising:Denoising",
    "nsp": "engine.objectives.pairs:NextSentence",
    "sop": "engine.objectives.pairs:SentenceOrder",
    "masked_lm+nsp": "engine.objectives.pairs:MaskedLMNextSentence",
    "masked_lm+sop": "engine.objectives.pairs:MaskedLMSentenceOrder",
    "classification": "engine.objectives.classification:Classification",
    "sft": "engine.objectives.sft:InstructionTuning",
    "reinforce": "engine.objectives.reinforce:Reinforce",
}
assert set(_IMPLEMENTATIONS) == set(OBJECTIVE_NAMES), "every catalog entry has an implementation"


def objective_class(name: str) -> type["Objective"]:
    module, cls = _IMPLEMENTATIONS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def get_objective(cfg: "RunConfig") -> "Objective":
    """The objective a run trains with (cfg.objective.name; the config is validated first)."""
    return objective_class(cfg.objective.name)(cfg)
