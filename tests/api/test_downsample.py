"""Min/max-preserving downsampling (pure function)."""

from __future__ import annotations

import math
import random

import pytest

from backend.services.downsample import minmax_indices


@pytest.mark.parametrize(
    ("n", "max_points"),
    [(0, 10), (1, 10), (5, 10), (10, 10), (11, 10), (10_000, 1000), (10_000, 11)],
)
def test_bounds_order_and_extremes(n: int, max_points: int) -> None:
    rng = random.Random(n)
    values = [math.sin(i / 50) + rng.gauss(0, 0.1) for i in range(n)]
    if n > 100:
        values[1234 % n] = 50.0  # one spike
        values[4321 % n] = -50.0  # one dip
    idx = minmax_indices(values, max_points)
    assert len(idx) <= max(max_points, 2) or n <= max_points
    assert idx == sorted(set(idx))
    if n <= max_points:
        assert idx == list(range(n))
    else:
        kept = [values[i] for i in idx]
        assert idx[0] == 0 and idx[-1] == n - 1
        assert max(kept) == max(values) and min(kept) == min(values)
