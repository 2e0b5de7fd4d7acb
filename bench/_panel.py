"""Shared by the benchmarks: start a real panel (the same helper the tests use) in a temp dir."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.panel import ASSET_CACHE, REDIS_URL, Panel, start_panel  # noqa: E402

__all__ = ["ASSET_CACHE", "REDIS_URL", "ROOT", "Panel", "percentile", "start_panel", "tiny_assets"]


def tiny_assets() -> dict[str, Path]:
    from worker.demo_assets import ensure_demo_assets

    return ensure_demo_assets(ASSET_CACHE / "demo")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no numpy needed)."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]
