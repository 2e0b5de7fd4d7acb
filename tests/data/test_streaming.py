"""Streaming gives the cache's blocks in the cache's order, in memory that does not grow with
the corpus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.data.conftest import FORTUNES, head_lines
from worker.data.documents import find_files
from worker.data.encoding import Encoder
from worker.data.files import PackOptions, cache_file
from worker.data.sources import Source
from worker.data.torch_data import BlockDataset, StreamingBlocks

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("packing", ["eos", "classic"])
def test_streaming_equals_cached(
    real_corpus: Path, mistral: Any, tmp_path: Path, packing: str
) -> None:
    encoder = Encoder(mistral)
    opts = PackOptions(96, packing)
    files = find_files(real_corpus)
    cached = BlockDataset([cache_file(p, encoder, opts, tmp_path).blocks for p in files])
    streamed = list(StreamingBlocks([Source("all", files)], encoder, opts))
    assert len(streamed) == len(cached) > 1000
    for i in range(len(cached)):
        assert np.array_equal(streamed[i]["input_ids"].numpy(), cached.block(i)), i
    item = streamed[0]
    assert (
        item["input_ids"].dtype.is_floating_point is False and item["labels"] is item["input_ids"]
    )
    # Held-out blocks are skipped at the head of the stream, limits cut its tail.
    skipped = list(StreamingBlocks([Source("all", files)], encoder, opts, skip=[5], limit=7))
    assert [b["input_ids"].tolist() for b in skipped] == [
        cached[i]["input_ids"].tolist() for i in range(5, 12)
    ]


PEAK = """
import json, resource, sys
from pathlib import Path
from transformers import AutoTokenizer
from worker.data.encoding import Encoder
from worker.data.files import PackOptions
from worker.data.sources import Source
from worker.data.torch_data import StreamingBlocks
tok = AutoTokenizer.from_pretrained(sys.argv[1])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
stream = StreamingBlocks([Source("s", [Path(sys.argv[2])])], Encoder(tok), PackOptions(512))
n = sum(1 for _ in stream)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"blocks": n, "base_kb": base, "peak_kb": peak}))
"""


def _peak(mistral_dir: Path, corpus: Path) -> dict[str, int]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", PEAK, str(mistral_dir), str(corpus)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_streaming_memory_does_not_grow_with_the_corpus(
    mistral_fast_dir: Path, tmp_path: Path
) -> None:
    """1x and 10x of 0.6 MB of real Chinese text (one file, so a whole-file read would show):
    peak RSS within 1.5x, and the growth over the loaded tokenizer does not scale."""
    text = head_lines((FORTUNES / "chinese").read_bytes(), 600_000)
    one, ten = tmp_path / "one.txt", tmp_path / "ten.txt"
    one.write_bytes(text)
    ten.write_bytes(text * 10)
    small, large = _peak(mistral_fast_dir, one), _peak(mistral_fast_dir, ten)
    assert large["blocks"] >= 10 * small["blocks"] - 10
    assert large["peak_kb"] <= 1.5 * small["peak_kb"], (small, large)
    grow_small = small["peak_kb"] - small["base_kb"]
    grow_large = large["peak_kb"] - large["base_kb"]
    # Growth over the loaded tokenizer levels off (allocator arenas of the tokenizer's threads):
    # measured +23, +39, +45, +47 MB at 1x, 3x, 10x, 30x. Reading the 10x file whole would add its
    # 6 MB of text and 2.5 M ids on top (about 100 MB as Python lists).
    assert grow_large - grow_small <= 32 * 1024, (small, large)
