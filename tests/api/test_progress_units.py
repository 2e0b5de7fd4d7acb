"""The speed and ETA decisions on recorded windows, no database (``backend/services/progress.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from backend.services.progress import (
    ETA_WINDOW,
    MIN_SPEED_SECONDS,
    pauses_left,
    running_mean,
    speed,
)


def _logs(
    intervals: list[tuple[int, float]], start_step: int = 0
) -> list[tuple[Any, Any, dict[str, Any]]]:
    """(step, time, data), newest first, from (interval_steps, train_seconds) oldest first."""
    out, step, t = [], start_step, 1000.0
    for n, secs in intervals:
        step, t = step + n, t + secs
        out.append((step, t, {"interval_steps": n, "train_seconds": secs}))
    return out[::-1]


def test_speed_waits_for_measured_training_then_averages_the_window() -> None:
    assert speed([], ended=False).per_step is None
    short = speed(_logs([(2, 0.5)]), ended=False)  # one short interval: timer noise
    assert short.per_step is None and short.too_few
    # Once the window holds MIN_SPEED_SECONDS of training: the mean of training seconds.
    full = speed(_logs([(2, 0.5), (2, 0.7), (2, 0.9)]), ended=False)
    assert full.timed and full.per_step == (0.5 + 0.7 + 0.9) / 6
    assert MIN_SPEED_SECONDS <= 0.5 + 0.7 + 0.9
    # An ended attempt's window is all there will be: measured whatever its length.
    assert speed(_logs([(2, 0.5)]), ended=True).per_step == 0.25
    # A full window counts even when quick.
    fast = speed(_logs([(1, 0.01)] * ETA_WINDOW), ended=False)
    assert fast.timed and abs(fast.per_step - 0.01) < 1e-12  # type: ignore[operator]


def test_untimed_events_fall_back_to_the_wall_clock() -> None:
    recent = [(30, 1090.0, {}), (20, 1050.0, {}), (10, 1010.0, {})]
    got = speed(recent, ended=False)
    assert not got.timed and got.per_step == 4.0
    assert speed([(10, 1010.0, {})], ended=False).per_step is None


def test_pauses_left_counts_the_evaluations_and_saves_to_come() -> None:
    now = datetime(2026, 12, 7, tzinfo=UTC)
    training = {"eval_steps": 10, "save_steps": 25}
    # At step 40 of 100: evals at 50..100 (6), saves at 50, 75, 100 (3) + the final save.
    left = pauses_left(training, 40, 100, 6.0, 2.0, None, None, now)
    assert left == 6 * 6.0 + (3 + 1) * 2.0
    # An evaluation under way for 4 s of its 6: 2 s of it, plus the whole ones to come.
    during = pauses_left(training, 40, 100, 6.0, 2.0, "evaluating", now - timedelta(seconds=4), now)
    assert during == left + 2.0
    # Nothing measured yet: nothing counted.
    assert pauses_left(training, 40, 100, None, None, None, None, now) == 0.0


def test_the_running_mean_weights_the_newest_half() -> None:
    assert running_mean(None, 8.0) == 8.0
    assert running_mean(8.0, 4.0) == 6.0
