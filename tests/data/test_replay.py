"""Replay as a number (``data.replay_share`` → ``--replay_share``): the share of the training
tokens drawn from the base language's sources (``"role": "replay"``), the other sources sharing
the rest by weight; the ``start`` event states each source's share and planned tokens.

Tolerance of the realized shares: the mixture draws whole blocks (all ``block_size`` tokens, so
a block share is a token share) and rounds each source's count to a block (largest remainder),
so over an epoch the realized share is within 1/N of the request (N blocks drawn). A run of n < N
blocks takes a uniform random subset of the shuffled epoch (the Trainer's seeded sampler): a
hypergeometric draw whose share has sd sqrt(p(1-p)/n * (N-n)/(N-1)); 4 sd (plus the 1/N of the
rounding) bounds it but for 6e-5 of the cases — and the seed fixes the case, so it cannot flake.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support.pretrain import events_of, output_of, run_pretrain, tiny_args
from worker.data.mixture import mixture_counts, replay_weights
from worker.training.arguments import check_arguments, parse_args
from worker.training.data import build_run_data
from worker.training.failures import InputError


def test_replay_weights_give_the_share_to_the_replay_sources() -> None:
    w = replay_weights([1.0, 3.0, 1.0], [False, True, True], 0.2)
    assert w == pytest.approx([0.8, 0.15, 0.05])
    # Whatever the pool sizes, the drawn blocks follow the share to one block.
    counts = mixture_counts([1000, 37, 5], w)
    assert counts[1] + counts[2] == pytest.approx(0.2 * 1042, abs=1)
    assert replay_weights([1.0, 1.0], [False, True], 0.0) == [1.0, 0.0]
    with pytest.raises(ValueError, match="besides the replay"):
        replay_weights([1.0], [True], 0.5)


def _sources(corpus: Path, tmp: Path) -> tuple[Path, Path]:
    """The tiny corpus split in two: the new language (udhr files) and replay text (the rest)."""
    a, b = tmp / "target", tmp / "replay"
    a.mkdir()
    b.mkdir()
    for f in corpus.iterdir():
        shutil.copy(f, a if f.name.startswith("udhr") else b)
    return a, b


def _digest(ids: Any) -> str:
    return hashlib.sha256(bytes(memoryview(ids.numpy()))).hexdigest()[:20]


@pytest.mark.parametrize("share", [0.1, 0.3, 0.6])
def test_realized_token_shares_match_the_requested_share(
    share: float, tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    from transformers import AutoTokenizer, Trainer, default_data_collator

    a, b = _sources(tiny_assets["corpus"], tmp_path)
    flags = tiny_args(
        tiny_assets, tmp_path / "out", tmp_path / "cache", dataset_dir=a, block_size=32,
        data_sources=json.dumps([{"path": str(b), "name": "en", "role": "replay"}]),
        replay_share=share, validation_split_percentage=0, per_device_train_batch_size=1,
        eval_steps=None, eval_strategy=None,
    )  # fmt: skip
    model_args, data_args, args = parse_args(flags)
    check_arguments(model_args, data_args, args)
    tok = AutoTokenizer.from_pretrained(str(tiny_assets["tokenizer_extended"]))
    data, summary = build_run_data(data_args, args, tok, 32)
    rows = {r["name"]: r for r in summary}
    assert rows["en"]["role"] == "replay" and rows["target"]["role"] is None
    n_total = len(data.train)
    # The epoch: within one block of the request.
    assert abs(rows["en"]["share"] - share) <= 1 / n_total, (rows["en"]["share"], share)
    assert rows["en"]["train_tokens"] == rows["en"]["train_blocks"] * 32

    # Which source each block came from (positions of the blocks, source after source).
    bounds = list(itertools.accumulate(r["blocks"] for r in summary))
    names = [r["name"] for r in summary]
    source_of: dict[str, str] = {}
    for i in range(n_total):
        pos = int(data.train.index[i])
        source_of[_digest(data.train[i]["input_ids"])] = names[bisect.bisect_right(bounds, pos)]
    # The order training reads: the Trainer's own seeded sampler and dataloader.
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_assets["model"]))
    trainer = Trainer(
        model=model, args=args, train_dataset=data.train, data_collator=default_data_collator
    )
    seen = [source_of[_digest(batch["input_ids"][0])] for batch in trainer.get_train_dataloader()]
    assert len(seen) == n_total
    realized_epoch = seen.count("en") / n_total
    assert abs(realized_epoch - share) <= 1 / n_total
    n = n_total // 4  # a run a quarter of an epoch long
    realized = seen[:n].count("en") / n
    sd = math.sqrt(share * (1 - share) / n * (n_total - n) / (n_total - 1))
    print(
        f"\nshare {share}: epoch {realized_epoch:.4f} of {n_total} blocks, first {n}: {realized:.4f} (sd {sd:.4f})"
    )
    assert abs(realized - share) <= 4 * sd + 1 / n_total, (realized, share, sd)


def test_replay_share_needs_a_replay_source(tiny_assets: dict[str, Path], tmp_path: Path) -> None:
    a, b = _sources(tiny_assets["corpus"], tmp_path)
    flags = tiny_args(
        tiny_assets, tmp_path / "out", tmp_path / "cache", dataset_dir=a, replay_share=0.2,
        data_sources=json.dumps([{"path": str(b), "name": "en"}]),
    )  # fmt: skip
    model_args, data_args, args = parse_args(flags)
    with pytest.raises(InputError, match="--replay_share"):
        check_arguments(model_args, data_args, args)


def test_start_event_states_shares_and_planned_tokens(
    tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    a, b = _sources(tiny_assets["corpus"], tmp_path)
    out = tmp_path / "out"
    args = tiny_args(
        tiny_assets, out, tmp_path / "cache", dataset_dir=a, replay_share=0.25,
        data_sources=json.dumps([{"path": str(b), "name": "en", "role": "replay"}]),
        max_steps=2, save_steps=100, eval_steps=None, eval_strategy=None,
    )  # fmt: skip
    proc = run_pretrain(args)
    assert proc.returncode == 0, output_of(proc)[-4000:]
    start = next(e for e in events_of(out) if e["kind"] == "start")
    rows = {r["name"]: r for r in start["data_sources"]}
    drawn = sum(r["train_blocks"] for r in rows.values())
    assert rows["en"]["share"] == pytest.approx(0.25, abs=1 / drawn)
    planned = 2 * start["tokens_per_step"]
    assert rows["en"]["planned_tokens"] == round(rows["en"]["share"] * planned)
    assert sum(r["planned_tokens"] for r in rows.values()) == pytest.approx(planned, abs=1)
