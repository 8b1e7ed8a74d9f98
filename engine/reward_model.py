"""REINFORCE's reward models: a classification run of the workspace scoring sampled text by the probability of one
of its classes (objective.reward = classifier:RUN:LABEL), read as its training read texts."""

from __future__ import annotations

from engine.config import ConfigError
from engine.rewards import KEY, Reward


def bind_classifiers(reward: Reward, ws, device) -> None:
    """Load every classifier term's run on `device` (ConfigError when it is not a classifier with that class)."""
    for term in reward.terms:
        if term.kind == "classifier":
            term._classify = classifier_scorer(ws, term.run, term.label, device)


def check_classifiers(ws, reward: Reward) -> None:
    """ConfigError before a run is made when a classifier term names a run that is not there, was not trained to
    classify, or has no such class (read from the run's config: no model is loaded)."""
    from engine.store.errors import WorkspaceError

    for term in reward.terms:
        if term.kind != "classifier":
            continue
        try:
            run = ws.run(term.run)
        except WorkspaceError:
            raise ConfigError(f"Reward: the classifier, run {term.run}, is not there", KEY) from None
        objective = (run.get("config") or {}).get("objective") or {}
        _check_classes(term.run, objective.get("name"), list(objective.get("classes") or []), term.label)


def _check_classes(run_ref, objective: str | None, classes: list[str], label: str) -> None:
    if objective != "classification" or not classes:
        raise ConfigError(f"Reward: run {run_ref} was not trained to classify, so it cannot score texts", KEY)
    if label not in classes:
        raise ConfigError(f"Reward: run {run_ref} has no class {label!r} (its classes: {', '.join(classes)})", KEY)


def classifier_scorer(ws, run_ref, label: str, device):
    """texts -> the probability classification run `run_ref` gives `label`, read as its training read texts."""
    import torch

    from engine.model_classifier import class_logits, resolve_pooling
    from engine.objectives.classification import encode_texts, padded
    from engine.run_generation import load_run
    from engine.store.errors import WorkspaceError
    from engine.checkpoint import CheckpointError

    try:
        loaded = load_run(ws, run_ref, device)
    except (WorkspaceError, CheckpointError) as e:
        raise ConfigError(f"Reward: the classifier, run {run_ref}, cannot be read ({e})", KEY) from None
    classes = list(loaded.cfg.objective.classes)
    _check_classes(run_ref, loaded.objective, classes, label)
    index, cls_id = classes.index(label), loaded.specials.get("cls")
    pad = loaded.specials.get("pad", loaded.specials.get("eos", 0))
    pooling = resolve_pooling(loaded.cfg.objective.pooling, loaded.arch, cls_id is not None)
    block = getattr(loaded.model, "context_size", loaded.cfg.model.block_size)
    model = loaded.model
    on = model.transformer.wte.weight.device

    @torch.no_grad()
    def score(texts: list[str]) -> list[float]:
        # Its training texts were stripped lines: a sample's leading line break is not what it judges.
        idx, real = padded(encode_texts(loaded.tok, [t.strip() for t in texts], cls_id, block), pad)
        logits = class_logits(model, idx.to(on), real.to(on), pooling).float()
        return torch.softmax(logits, -1)[:, index].tolist()

    return score
