"""The optimizers and learning-rate schedules of engine/optim.py: adamw is exactly today's, the others are the
classic recipes' (Adam, SGD with momentum / Nesterov), and each schedule has the shape its paper draws."""

import math

import pytest
import torch

from engine.config import ModelConfig, TrainConfig
from engine.model import GPT
from engine.optim import lr_at, make_optimizer


def _model() -> GPT:
    torch.manual_seed(0)
    return GPT(ModelConfig(n_layer=1, n_head=2, n_embd=16, block_size=8), 20)


def _groups(opt) -> list[tuple[list[int], float]]:
    return [([id(p) for p in g["params"]], g["weight_decay"]) for g in opt.param_groups]


def test_adamw_is_built_exactly_as_the_model_builds_it_today():
    model = _model()
    tc = TrainConfig(weight_decay=0.1, learning_rate=3e-3, beta1=0.9, beta2=0.95)
    ours = make_optimizer(model, tc, "cpu")
    theirs = model.configure_optimizer(0.1, 3e-3, (0.9, 0.95), "cpu")
    assert type(ours) is type(theirs) is torch.optim.AdamW
    assert _groups(ours) == _groups(theirs)
    assert ours.defaults == theirs.defaults


def test_adam_and_sgd_decay_the_same_groups_with_their_own_settings():
    model = _model()
    adam = make_optimizer(model, TrainConfig(optimizer="adam", beta1=0.9, beta2=0.98, weight_decay=0.0), "cpu")
    assert type(adam) is torch.optim.Adam and adam.defaults["betas"] == (0.9, 0.98)
    sgd = make_optimizer(model, TrainConfig(optimizer="sgd", momentum=0.8, nesterov=True, learning_rate=0.1), "cpu")
    assert type(sgd) is torch.optim.SGD
    assert (sgd.defaults["momentum"], sgd.defaults["nesterov"], sgd.defaults["lr"]) == (0.8, True, 0.1)
    adamw = make_optimizer(model, TrainConfig(), "cpu")
    # Matrices and embeddings decay, biases and norm weights do not, whatever the optimizer.
    assert [ids for ids, _ in _groups(sgd)] == [ids for ids, _ in _groups(adamw)]
    assert [wd for _, wd in _groups(sgd)] == [TrainConfig().weight_decay, 0.0]


def test_sgd_with_nesterov_momentum_lowers_the_loss():
    model = _model()
    opt = make_optimizer(model, TrainConfig(optimizer="sgd", momentum=0.9, nesterov=True, learning_rate=0.05), "cpu")
    x = torch.randint(0, 20, (4, 8), generator=torch.Generator().manual_seed(1))
    losses = []
    for _ in range(30):
        _, loss = model(x, x)  # learn to copy: easy, so a few steps show it
        losses.append(loss.item())
        loss.backward()
        opt.step()
        opt.zero_grad()
    assert losses[-1] < losses[0] - 0.5, losses


def test_linear_schedule_warms_up_then_falls_in_a_straight_line_to_min_lr():
    tc = TrainConfig(lr_schedule="linear", learning_rate=1e-3, min_lr=1e-4, warmup_iters=10, lr_decay_iters=110)
    assert lr_at(0, tc) == pytest.approx(1e-3 / 11)  # the same warm-up as the cosine
    assert lr_at(10, tc) == pytest.approx(1e-3)
    assert lr_at(60, tc) == pytest.approx((1e-3 + 1e-4) / 2)
    steps = [lr_at(i, tc) - lr_at(i + 1, tc) for i in range(10, 110)]
    assert steps == pytest.approx([0.9e-3 / 100] * 100)  # equal steps down: a straight line
    assert lr_at(110, tc) == pytest.approx(1e-4) and lr_at(1000, tc) == pytest.approx(1e-4)


def test_constant_schedule_holds_the_learning_rate_after_warm_up():
    tc = TrainConfig(lr_schedule="constant", learning_rate=1e-3, min_lr=1e-4, warmup_iters=5, lr_decay_iters=50)
    assert lr_at(0, tc) == pytest.approx(1e-3 / 6)
    assert [lr_at(i, tc) for i in (5, 50, 5000)] == pytest.approx([1e-3] * 3)


def test_inverse_sqrt_schedule_is_the_original_transformers():
    tc = TrainConfig(lr_schedule="inverse_sqrt", learning_rate=1e-3, min_lr=1e-4, warmup_iters=100)
    # Vaswani et al. eq. 3 with d_model^-0.5 folded into the peak: min(step / warmup, sqrt(warmup / step)).
    d = 64
    for step in (1, 50, 100, 101, 400, 10_000):
        paper = d**-0.5 * min(step**-0.5, step * 100**-1.5)
        assert lr_at(step - 1, tc) == pytest.approx(1e-3 * paper / (d**-0.5 * 100**-0.5))
    rising = [lr_at(i, tc) for i in range(100)]
    falling = [lr_at(i, tc) for i in range(99, 2000)]
    assert rising == sorted(rising) and falling == sorted(falling, reverse=True)
    assert max(rising + falling) == pytest.approx(1e-3) == lr_at(99, tc)  # the peak at the end of warm-up
    assert lr_at(399, tc) == pytest.approx(1e-3 / 2)  # four times the warm-up: half the peak
    assert lr_at(10**9, tc) < tc.min_lr  # no floor: 1/sqrt(step) for ever
    no_warmup = TrainConfig(lr_schedule="inverse_sqrt", learning_rate=1e-3, warmup_iters=0)
    assert lr_at(0, no_warmup) == pytest.approx(1e-3) and lr_at(3, no_warmup) == pytest.approx(1e-3 / 2)
    assert all(math.isfinite(lr_at(i, no_warmup)) for i in range(10))
