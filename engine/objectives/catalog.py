"""Every pre-training objective in words: what it asks of the model, what it teaches, where it comes from.

Standard library only (a shared module): the Objective panel, the CLI's `objectives` command and
RunConfig.validate read it; the torch implementations (engine/objectives/<name>.py) follow it, and a test keeps
the two in step (every name here has an implementation that trains the same architectures and reports these
metrics).
"""

from __future__ import annotations

from dataclasses import dataclass

# What an objective asks of the model, in the order the Objective panel shows the groups.
GROUPS: dict[str, str] = {
    "next": "Predict the next token",
    "blanks": "Fill in the blanks",
    "repair": "Repair damaged text",
    "pairs": "Judge two sentences",
    "classes": "Sort texts into classes",
    "answer": "Answer a prompt",
    "reward": "Write for a reward",
}
# Plain names of the metrics objectives report (besides the loss); the Train and Runs panels show these.
METRIC_LABELS: dict[str, str] = {
    "perplexity": "Perplexity",
    "accuracy": "Token accuracy",
    "masked_accuracy": "Masked-token accuracy",
    "pair_accuracy": "Pair accuracy",
    "kl": "KL to the teacher",
    "class_accuracy": "Accuracy",
    "macro_f1": "Macro-F1",
    "reward": "Mean reward",
    "ref_kl": "KL to the start",
    "entropy": "Entropy",
}


@dataclass(frozen=True)
class ObjectiveInfo:
    name: str  # objective.name
    label: str  # the Objective panel's title
    group: str  # a key of GROUPS
    archs: tuple[str, ...]  # model.arch values it trains, the natural one first
    teaches: str  # two plain sentences: what it does and what the model learns from it
    paper: str  # where it comes from
    options: tuple[str, ...] = ()  # objective.* keys it reads
    metrics: tuple[str, ...] = ("perplexity",)  # keys of METRIC_LABELS it reports on both splits
    # Special token roles it needs in the vocabulary (engine/choices.py SPECIAL_ROLES); "sentinel" stands for
    # the T5 sentinels <extra_id_0>, <extra_id_1>, ...
    needs: tuple[str, ...] = ()
    needs_segments: bool = False  # model.n_segments >= 2 (sentence pairs)
    loss_over: str = "every token"  # what the loss averages over, so curves of different objectives can be read
    needs_teacher: bool = False  # objective.teacher_run: a finished run it learns from (distillation)
    needs_labels: bool = False  # a dataset imported with a label column (classification)
    needs_parent: bool = False  # train.init_from: it improves a trained run (REINFORCE)


_ALL = (
    ObjectiveInfo(
        "causal_lm",
        "Causal language modelling",
        "next",
        ("decoder",),
        "Predict each token from the ones before it, never seeing what comes after. Once trained, the model "
        "writes text one token at a time, as GPT does.",
        "Radford et al. 2018, GPT",
        metrics=("perplexity", "accuracy"),
    ),
    ObjectiveInfo(
        "distillation",
        "Knowledge distillation",
        "next",
        ("decoder",),
        "Predict each next token as a trained teacher model would: match its whole spread of guesses, softened by "
        "a temperature, as well as the real next token. A small student learns faster from a big model than from "
        "the text alone.",
        "Hinton et al. 2015, Distilling the Knowledge in a Neural Network",
        options=("teacher_run", "distill_alpha", "distill_temperature"),
        metrics=("perplexity", "accuracy", "kl"),
        loss_over="every token, mixed with the teacher's guesses",
        needs_teacher=True,
    ),
    ObjectiveInfo(
        "prefix_lm",
        "Prefix language modelling",
        "next",
        ("decoder",),
        "Read the first part of each text with attention in both directions, then predict the rest token by "
        "token. The model learns to continue a prompt it has understood as a whole.",
        "Dong et al. 2019, UniLM; Raffel et al. 2020, T5",
        options=("prefix_fraction",),
        metrics=("perplexity", "accuracy"),
        loss_over="the tokens after the prefix",
    ),
    ObjectiveInfo(
        "permutation_lm",
        "Permutation language modelling",
        "next",
        ("decoder",),
        "Predict tokens in a random order, each from the ones that come before it in that order, wherever they "
        "are in the text. The model learns to use context on both sides while still predicting one token at a "
        "time.",
        "Yang et al. 2019, XLNet",
        options=("predict_fraction",),
        metrics=("perplexity", "accuracy"),
        # The query stream starts from the [MASK] embedding (XLNet's learned w, here shared with the vocabulary).
        needs=("mask",),
        loss_over="the predicted last part of each order",
    ),
    ObjectiveInfo(
        "masked_lm",
        "Masked language modelling",
        "blanks",
        ("encoder",),
        "Hide some of the tokens and predict them from the words on both sides. The model learns what words mean "
        "in context, which is good for understanding text but not for writing it.",
        "Devlin et al. 2019, BERT",
        options=("mask_prob", "mask_token_share", "random_token_share", "whole_word"),
        metrics=("perplexity", "masked_accuracy"),
        needs=("mask",),
        loss_over="the masked tokens",
    ),
    ObjectiveInfo(
        "span_corruption",
        "Span corruption",
        "blanks",
        ("encoder-decoder", "decoder"),
        "Cut short spans out of the text, leave a placeholder for each, and write back what was cut. On a decoder "
        "the same gaps train fill-in-the-middle: the text before and after a gap, then its middle.",
        "Raffel et al. 2020, T5; Bavarian et al. 2022, fill-in-the-middle",
        options=("noise_density", "mean_span_length", "fim_rate"),
        metrics=("perplexity", "accuracy"),
        needs=("sentinel", "eos"),
        loss_over="the hidden spans and their placeholders",
    ),
    ObjectiveInfo(
        "denoising",
        "Denoising",
        "repair",
        ("encoder-decoder",),
        "Damage the text (mask, delete or shuffle parts of it) and write the original back. The model learns to "
        "read damaged text and to write fluent text from what it read.",
        "Lewis et al. 2020, BART",
        options=("noises", "denoise_mask_prob", "poisson_lambda"),
        metrics=("perplexity", "accuracy"),
        needs=("mask", "eos"),
        loss_over="every token of the original text",
    ),
    ObjectiveInfo(
        "nsp",
        "Next-sentence prediction",
        "pairs",
        ("encoder",),
        "Show two pieces of text and ask whether the second follows the first or was taken from elsewhere. The "
        "model learns how sentences connect across a text.",
        "Devlin et al. 2019, BERT",
        metrics=("pair_accuracy",),
        needs=("cls", "sep"),
        needs_segments=True,
        loss_over="the pair's label",
    ),
    ObjectiveInfo(
        "sop",
        "Sentence-order prediction",
        "pairs",
        ("encoder",),
        "Show two pieces of text that follow each other, sometimes swapped, and ask whether they are in order. The "
        "model learns the flow of a text, which topic alone cannot tell it.",
        "Lan et al. 2020, ALBERT",
        metrics=("pair_accuracy",),
        needs=("cls", "sep"),
        needs_segments=True,
        loss_over="the pair's label",
    ),
    ObjectiveInfo(
        "masked_lm+nsp",
        "Masked LM + next sentence",
        "pairs",
        ("encoder",),
        "BERT's own recipe: masked language modelling on sentence pairs, plus next-sentence prediction, the two "
        "losses added. The model learns words in context and how sentences connect.",
        "Devlin et al. 2019, BERT",
        options=("mask_prob", "mask_token_share", "random_token_share", "whole_word"),
        metrics=("perplexity", "masked_accuracy", "pair_accuracy"),
        needs=("mask", "cls", "sep"),
        needs_segments=True,
        loss_over="the masked tokens plus the pair's label",
    ),
    ObjectiveInfo(
        "masked_lm+sop",
        "Masked LM + sentence order",
        "pairs",
        ("encoder",),
        "ALBERT's recipe: masked language modelling on sentence pairs, plus sentence-order prediction, the two "
        "losses added. The model learns words in context and the order of a text.",
        "Lan et al. 2020, ALBERT",
        options=("mask_prob", "mask_token_share", "random_token_share", "whole_word"),
        metrics=("perplexity", "masked_accuracy", "pair_accuracy"),
        needs=("mask", "cls", "sep"),
        needs_segments=True,
        loss_over="the masked tokens plus the pair's label",
    ),
    ObjectiveInfo(
        "classification",
        "Classification",
        "classes",
        ("encoder", "decoder", "encoder-decoder"),
        "Read a whole text and name its class, learned from texts that carry a label (a column picked at import). "
        "Start it from a pre-trained run and it learns from far fewer examples.",
        "Devlin et al. 2019, BERT (fine-tuning); Radford et al. 2018, GPT",
        options=("pooling",),
        metrics=("class_accuracy", "macro_f1"),
        loss_over="each text's label",
        needs_labels=True,
    ),
    ObjectiveInfo(
        "sft",
        "Instruction tuning",
        "answer",
        ("decoder", "encoder-decoder"),
        "Learn from pairs of a prompt and its response (two columns picked at import), joined by a template; only "
        "the response is learned. The model learns to answer a prompt the way the examples do.",
        "Wei et al. 2022, FLAN; Ouyang et al. 2022, InstructGPT",
        options=("template",),
        metrics=("perplexity", "accuracy"),
        needs=("eos",),  # ends every response, so an answer stops where it should
        loss_over="the response tokens",
        needs_labels=True,
    ),
    ObjectiveInfo(
        "reinforce",
        "REINFORCE",
        "reward",
        ("decoder",),
        "Write a few continuations of each prompt, score each with a reward you choose (words it should hold or "
        "avoid, a length, a pattern, a classifier's verdict) and make the better ones likelier. A penalty keeps it "
        "close to the model it started from, so it still writes the language it learned.",
        "Williams 1992, REINFORCE; Ziegler et al. 2019, fine-tuning language models from human preferences",
        options=("reward", "kl_coef", "baseline", "samples_per_prompt", "max_new_tokens", "sample_temperature"),
        metrics=("reward", "ref_kl", "entropy"),
        loss_over="its samples: minus their mean reward, plus the KL penalty",
        needs_parent=True,
    ),
)

OBJECTIVE_CATALOG: dict[str, ObjectiveInfo] = {o.name: o for o in _ALL}
OBJECTIVE_NAMES: tuple[str, ...] = tuple(OBJECTIVE_CATALOG)


def objective_info(name: str) -> ObjectiveInfo:
    """The catalog entry of objective `name` (KeyError for an unknown one: RunConfig.validate names it first)."""
    return OBJECTIVE_CATALOG[name]


def compatible_objectives(arch: str) -> list[str]:
    return [o.name for o in _ALL if arch in o.archs]


def losses_comparable(names: list[str]) -> bool:
    """Whether the losses of runs with these objectives average over the same thing (one curve can be read
    against another); the Runs panel notes it when they do not."""
    return len({OBJECTIVE_CATALOG[n].loss_over for n in names if n in OBJECTIVE_CATALOG}) <= 1
