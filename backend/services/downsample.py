"""Min/max-preserving downsampling: a spike survives however far the chart is zoomed out."""

from __future__ import annotations

from collections.abc import Sequence


def minmax_indices(values: Sequence[float], max_points: int) -> list[int]:
    """Indices to keep, in order: first, last, and each bucket's min and max.

    ``len(result) <= max(max_points, 2)``; all indices when the series already fits.
    """
    n = len(values)
    if n <= max_points or n <= 2:
        return list(range(n))
    buckets = max(1, (max_points - 2) // 2)
    keep = {0, n - 1}
    inner = n - 2
    for b in range(buckets):
        lo = 1 + b * inner // buckets
        hi = 1 + (b + 1) * inner // buckets
        if lo >= hi:
            continue
        # Builtins over a slice, not a key function per element: the first index of the
        # window's min and max, at C speed (a zoomed chart thins tens of thousands of points).
        window = values[lo:hi]
        keep.add(lo + window.index(min(window)))
        keep.add(lo + window.index(max(window)))
    return sorted(keep)
