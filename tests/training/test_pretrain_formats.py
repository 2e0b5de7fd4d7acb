"""``pretrain.py`` trains on corpora in the shapes they ship in: the tiny corpus as ``.parquet``
shards (text in a ``content`` column, ``--text_column content``), a ``.jsonl.zst`` mixture source
and a held-out set saved by ``datasets``, against the same documents as ``.jsonl``: the same
token counts, the same losses step by step and the same bits per character."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from tests.support.pretrain import assert_trained, run_pretrain, tiny_args
from worker.data.documents import find_files, read_texts


def _jsonl(docs: list[str]) -> bytes:
    return "".join(json.dumps({"text": d}, ensure_ascii=False) + "\n" for d in docs).encode()


def _layouts(corpus: Path, root: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(flags for the .jsonl run, flags for the shipped-shapes run) over the same documents."""
    files = find_files(corpus)
    held, replay, train = files[0], files[1], files[2:]
    plain, shipped = root / "plain", root / "shipped"
    for d in (plain / "train", shipped / "train"):
        d.mkdir(parents=True)
    for path in train:
        docs = read_texts(path)[0]
        stem = path.name.split(".")[0]
        (plain / "train" / f"{stem}.jsonl").write_bytes(_jsonl(docs))
        pq.write_table(pa.table({"content": docs}), shipped / "train" / f"{stem}.parquet")
    replay_docs = read_texts(replay)[0]
    (plain / "replay.jsonl").write_bytes(_jsonl(replay_docs))
    (shipped / "replay.jsonl.zst").write_bytes(
        zstandard.ZstdCompressor().compress(_jsonl(replay_docs))
    )
    held_docs = read_texts(held)[0]
    (plain / "held.jsonl").write_bytes(_jsonl(held_docs))
    import datasets

    datasets.Dataset.from_dict({"text": held_docs}).save_to_disk(str(shipped / "held"))

    def flags(d: Path, replay_name: str, held_path: Path, **extra: Any) -> dict[str, Any]:
        return {
            "dataset_dir": d / "train",
            "data_sources": json.dumps([{"path": str(d / replay_name), "weight": 0.5}]),
            "eval_sets": json.dumps({"held": str(held_path)}),
            "max_steps": 8,
            "eval_steps": 8,
            "save_steps": 8,
            **extra,
        }

    return (
        flags(plain, "replay.jsonl", plain / "held.jsonl"),
        flags(shipped, "replay.jsonl.zst", shipped / "held", text_column="content"),
    )


@pytest.mark.slow
def test_shipped_shapes_train_like_their_jsonl(
    tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    plain, shipped = _layouts(tiny_assets["corpus"], tmp_path)
    runs = []
    for name, flags in (("plain", plain), ("shipped", shipped)):
        out = tmp_path / f"out-{name}"
        proc = run_pretrain(tiny_args(tiny_assets, out, tmp_path / f"cache-{name}", **flags))
        runs.append(assert_trained(proc, out))
    starts = [next(e for e in events if e["kind"] == "start") for events in runs]
    counts = [
        [(s["documents"], s["tokens"], s["blocks"]) for s in start["data_sources"]]
        for start in starts
    ]
    assert counts[0] == counts[1] and all(c[1] > 0 for c in counts[0]), counts
    held = [next(s for s in start["eval_sets"] if s["name"] == "held") for start in starts]
    assert (held[0]["characters"], held[0]["tokens"]) == (held[1]["characters"], held[1]["tokens"])
    losses = [[e["loss"] for e in events if e["kind"] == "log"] for events in runs]
    assert losses[0] == pytest.approx(losses[1], abs=1e-5), losses
    bpc = [[e["eval_held_bits_per_char"] for e in events if e["kind"] == "eval"] for events in runs]
    assert bpc[0] == pytest.approx(bpc[1], abs=1e-5), bpc
