"""Divergence and dead training on recorded loss curves (``worker/training/divergence.py``)."""

from __future__ import annotations

import math

from worker.training.divergence import LossWatch


def _run(curve: list[tuple[float | None, float | None]], factor: float = 5.0, patience: int = 5):
    watch = LossWatch(factor, patience)
    for i, (loss, grad) in enumerate(curve):
        if finding := watch.observe(loss, grad):
            return i, finding
    return None


def test_a_healthy_curve_with_noise_and_a_spike_is_left_alone() -> None:
    curve = [(6.7 * math.exp(-i / 40) + 2 + 0.3 * math.sin(i), 1.0) for i in range(200)]
    curve[120] = (40.0, 3.0)  # one spike, back at once
    assert _run(curve) is None


def test_the_loss_that_ran_away_ends_diverged_with_the_numbers() -> None:
    """The overnight curve: 6.7 falling to 3, then 80-106 for good."""
    curve = [(6.7 - i * 0.1, 1.0) for i in range(37)] + [(80 + i % 27, 9.0) for i in range(20)]
    i, finding = _run(curve)  # type: ignore[misc]
    assert finding.code == "diverged" and i == 37 + 4
    assert "above 5 x its best (3.1)" in finding.message and "5 logs in a row" in finding.message


def test_a_constant_loss_or_a_zero_gradient_is_warned_once() -> None:
    flat = [(5.0 - i * 0.2, 1.0) for i in range(10)] + [(3.25, 0.5)] * 12
    _, finding = _run(flat)  # type: ignore[misc]
    assert finding.code == "dead_training" and "stayed at 3.25" in finding.message
    zero = [(4.0 + (i % 3) * 0.01, 0.0) for i in range(12)]
    _, finding = _run(zero)  # type: ignore[misc]
    assert finding.code == "dead_training" and "gradient norm was 0 for 5 logs" in finding.message
    watch = LossWatch(5.0, 5)
    said = [watch.observe(1.0, 0.0) for _ in range(30)]
    assert sum(1 for f in said if f) == 1  # once per run, not every log


def test_nan_logs_are_left_to_the_step_rule_and_the_factor_can_be_off() -> None:
    assert _run([(None, None)] * 20) is None
    runaway = [(3.0, 1.0)] + [(300.0 + i, 1.0) for i in range(20)]
    assert _run(runaway, factor=0) is None
