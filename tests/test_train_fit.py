"""The training loop's options: the weight average it keeps and the mixup it trains on."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from wakeword.training.train import fit, make_head, predict  # noqa: E402


def _separable(n: int = 3000, labels: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, labels, n)
    x = rng.standard_normal((n, 9, 96)).astype(np.float32)
    x[np.arange(n), :, y] += 1.5
    return x, y


def _fit_linear(x, y, **options):
    torch.manual_seed(0)
    model = torch.nn.Linear(x.shape[1], 2)
    groups = [{"params": list(model.parameters()), "lr": 1e-2, "weight_decay": 0.0}]
    fit(model, groups, x, y, x[:0], y[:0], 2, 1, 0, 1, lambda m: None, **options)
    return model


def test_ema_keeps_the_moving_average_of_the_weights_not_the_last_step():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((256 * 40, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    steps: list[np.ndarray] = []

    def record(optimizer, args, kwargs):
        steps.append(
            np.concatenate([p.detach().numpy().ravel().copy() for g in optimizer.param_groups for p in g["params"]])
        )

    from torch.optim.optimizer import register_optimizer_step_post_hook

    handle = register_optimizer_step_post_hook(record)
    try:
        last = _fit_linear(x, y)
    finally:
        handle.remove()
    assert len(steps) == 40
    want = steps[0]  # the average starts at the first step's weights
    for n, w in enumerate(steps[1:], start=1):
        d = min(0.7, (1 + n) / (10 + n))  # the warmed-up decay: 0.18, 0.25, 0.31, ...
        want = d * want + (1 - d) * w
    averaged = _fit_linear(x, y, ema_decay=0.7)
    got = np.concatenate([p.detach().numpy().ravel() for p in averaged.parameters()])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    final = np.concatenate([p.detach().numpy().ravel() for p in last.parameters()])
    np.testing.assert_allclose(final, steps[-1], rtol=1e-6)
    assert np.abs(got - final).max() > 1e-4  # the average is not the last step (float error is ~1e-7)


def test_mixup_feeds_convex_mixes_of_two_clips_with_one_weight_per_batch():
    n = 256
    x = np.eye(n, dtype=np.float32)  # each clip is its own one-hot row, so a mix shows which two it took
    y = np.arange(n) % 2
    seen: list[np.ndarray] = []
    torch.manual_seed(0)
    model = torch.nn.Linear(n, 2)
    model.register_forward_pre_hook(
        lambda module, inputs: seen.append(inputs[0].detach().numpy().copy()) if module.training else None
    )
    groups = [{"params": list(model.parameters()), "lr": 1e-2, "weight_decay": 0.0}]
    fit(model, groups, x, y, x[:0], y[:0], 2, 2, 0, 1, lambda m: None, mixup=0.4)
    assert len(seen) == 2
    for batch in seen:
        np.testing.assert_allclose(batch.sum(1), 1.0, rtol=1e-5)  # convex: the weights sum to one
        assert (batch >= 0).all()
        top2 = np.sort(batch, axis=1)[:, -2:]
        mixed = top2[:, 0] > 1e-6  # rows mixed with another clip (a row mixed with itself stays one-hot)
        assert mixed.mean() > 0.9
        lam = top2[mixed].max(1)
        assert np.ptp(lam) < 1e-5 and 0.5 <= lam[0] < 1.0  # one weight for the whole batch
        assert np.ptp(top2[mixed].min(1)) < 1e-5


def test_ema_and_mixup_still_learn_a_separable_problem():
    x, y = _separable()
    for options in ({}, {"ema_decay": 0.9}, {"mixup": 0.2}, {"ema_decay": 0.9, "mixup": 0.2}):
        torch.manual_seed(0)
        model = make_head(9, 3, 32)
        groups = [{"params": list(model.parameters()), "lr": 2e-3, "weight_decay": 5e-2}]
        acc = fit(model, groups, x[:2500], y[:2500], x[2500:], y[2500:], 3, 4, 0, 1, lambda m: None, **options)
        assert acc > 0.9, options
        assert (predict(model, x[2500:]) == y[2500:]).mean() == acc  # the kept weights are the validated ones


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--ema-decay", "1", "--ema-decay must be at least 0 and below 1"),
        ("--ema-decay", "-0.5", "--ema-decay must be at least 0 and below 1"),
        ("--mixup", "-1", "--mixup must not be negative"),
    ],
)
def test_bad_ema_or_mixup_values_are_refused(tmp_path, flag, value, message):
    proc = subprocess.run(
        [sys.executable, "-m", "wakeword", "train", "yes", "--out", str(tmp_path / "m"), flag, value],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.decode().strip().splitlines() == [f"wakeword: error: train: {message}"]
    assert not (tmp_path / "m").exists()
