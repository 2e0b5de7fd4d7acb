"""``--data_sources``: weighted, seeded mixtures; replay of small sources; a resumed run sees the
batches the uninterrupted run saw; the ``start`` event lists each source's tokens and blocks."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.pretrain import events_of, output_of, run_pretrain, tiny_args
from worker.data.errors import DataError
from worker.data.files import PackOptions
from worker.data.mixture import mix, mixture_counts
from worker.data.sources import Source, load_sources, parse_data_sources
from worker.data.training import DataPlan, build


def test_counts_follow_the_weights() -> None:
    assert mixture_counts([100, 100], [3, 1]) == [150, 50]
    assert sum(mixture_counts([7, 5, 1], [1, 1, 1])) == 13
    assert mixture_counts([10, 0], [1, 0]) == [10, 0]


def test_mix_is_seeded_and_replays_small_sources() -> None:
    pools = [np.arange(0, 90), np.arange(1000, 1010)]  # 90 and 10 blocks, weights 1:1
    a, counts = mix(pools, [1, 1], seed=3)
    b, _ = mix(pools, [1, 1], seed=3)
    c, _ = mix(pools, [1, 1], seed=4)
    assert counts == [50, 50] and np.array_equal(a, b) and not np.array_equal(a, c)
    seen = Counter(int(x) for x in a if x >= 1000)
    assert set(seen) == set(range(1000, 1010)) and set(seen.values()) == {5}  # 5 passes each
    big = [int(x) for x in a if x < 1000]
    assert len(set(big)) == 50  # a subset of the large source, no repeats
    # Shuffled together: the first 20 already hold both sources.
    assert {x >= 1000 for x in a[:20].tolist()} == {True, False}
    one, n = mix([np.arange(5)], [2.0], seed=1)
    assert one.tolist() == [0, 1, 2, 3, 4] and n == [5]  # one source: as is


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not json", "--data_sources: not JSON"),
        ("[]", "non-empty JSON list"),
        ('[{"weight": 1}]', '"path" (a file or directory) is required'),
        ('[{"path": "a", "weight": -1}]', '"weight" must be a finite number >= 0'),
        ('[{"path": "a", "weight": "x"}]', '"weight" must be a number'),
        ('[{"path": "a", "weight": 0}, {"path": "b", "weight": 0}]', "the weights sum to 0"),
        ('[{"path": "a", "name": "x"}, {"path": "b", "name": "x"}]', "used twice"),
        ('[{"path": "a", "size": 1}]', "unknown key"),
    ],
)
def test_bad_data_sources(value: str, message: str) -> None:
    with pytest.raises(DataError) as err:
        parse_data_sources(value)
    assert message in str(err.value) and str(err.value).startswith("--data_sources")


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"item 0 \(gone\): .* does not exist"):
        load_sources(
            parse_data_sources(json.dumps([{"path": str(tmp_path / "x"), "name": "gone"}]))
        )


def _two_sources(corpus: Path, tmp: Path) -> tuple[Path, Path]:
    a, b = tmp / "udhr", tmp / "chat"
    a.mkdir()
    b.mkdir()
    for f in corpus.iterdir():
        shutil.copy(f, a if f.name.startswith("udhr") else b)
    return a, b


def _digest(batch: Any) -> str:
    return hashlib.sha256(batch["input_ids"].numpy().tobytes()).hexdigest()[:16]


def test_resumed_trainer_continues_the_same_order(
    tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    """HF Trainer resume skips the consumed batches of the same seeded sampler over the same
    (deterministic) mixture: steps 4-6 of a run resumed from checkpoint-3 see the batches of the
    uninterrupted run's steps 4-6."""
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        Trainer,
        TrainingArguments,
        default_data_collator,
    )

    a, b = _two_sources(tiny_assets["corpus"], tmp_path)
    tok = AutoTokenizer.from_pretrained(str(tiny_assets["tokenizer"]))

    def plan() -> DataPlan:
        return DataPlan(
            sources=[Source("udhr", sorted(a.iterdir()), 1.0), Source("chat", sorted(b.iterdir()), 3.0)],
            opts=PackOptions(32), validation_split=0.05, seed=11, cache_dir=tmp_path / "cache",
        )  # fmt: skip

    data = build(plan(), tok)
    again = build(plan(), tok)
    assert np.array_equal(data.train.index, again.train.index)  # same data, seed → same mixture
    drawn = {row["name"]: row["train_blocks"] for row in data.summary}
    assert drawn["chat"] == pytest.approx(3 * drawn["udhr"], rel=0.02)

    seen: dict[int, str] = {}

    class Recording(Trainer):
        def training_step(self, model: Any, inputs: Any, num_items_in_batch: Any = None) -> Any:
            seen[self.state.global_step + 1] = _digest(inputs)
            return super().training_step(model, inputs, num_items_in_batch)

    def trainer(out: Path) -> Trainer:
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_pretrained(str(tiny_assets["model"]))
        args = TrainingArguments(
            output_dir=str(out), max_steps=6, save_steps=3, per_device_train_batch_size=4,
            learning_rate=1e-3, logging_steps=1, report_to="none", use_cpu=True, seed=11,
            save_only_model=False, disable_tqdm=True,
        )  # fmt: skip
        return Recording(model=model, args=args, train_dataset=build(plan(), tok).train,
                         data_collator=default_data_collator)  # fmt: skip

    trainer(tmp_path / "a").train()
    uninterrupted = dict(seen)
    assert sorted(uninterrupted) == [1, 2, 3, 4, 5, 6]
    seen.clear()
    trainer(tmp_path / "a").train(resume_from_checkpoint=str(tmp_path / "a" / "checkpoint-3"))
    assert sorted(seen) == [4, 5, 6]
    assert all(seen[s] == uninterrupted[s] for s in (4, 5, 6)), (seen, uninterrupted)
    assert len(set(uninterrupted.values())) == 6


def test_pretrain_with_data_sources(tiny_assets: dict[str, Path], tmp_path: Path) -> None:
    """--dataset_dir (weight 1) plus a --data_sources replay source of weight 3: trains, and the
    start event lists both sources with their tokens and blocks."""
    a, b = _two_sources(tiny_assets["corpus"], tmp_path)
    out = tmp_path / "out"
    sources = json.dumps([{"path": str(b), "weight": 3, "name": "replay"}])
    args = tiny_args(
        tiny_assets, out, tmp_path / "cache", dataset_dir=a, data_sources=sources,
        max_steps=4, save_steps=4, eval_steps=4, max_eval_samples=8,
    )  # fmt: skip
    proc = run_pretrain(args)
    assert proc.returncode == 0, output_of(proc)[-4000:]
    start = next(e for e in events_of(out) if e["kind"] == "start")
    rows = {r["name"]: r for r in start["data_sources"]}
    assert set(rows) == {"udhr", "replay"}
    assert rows["replay"]["weight"] == 3 and rows["udhr"]["weight"] == 1
    for row in rows.values():
        assert row["tokens"] > row["blocks"] * 64 * 0.9 and row["blocks"] > 0
        assert row["files"] > 0 and row["documents"] > 0 and row["eval_blocks"] > 0
    assert rows["replay"]["train_blocks"] == pytest.approx(
        3 * rows["udhr"]["train_blocks"], rel=0.02
    )
    assert "source replay (weight 3)" in output_of(proc)
