"""What the launch form shows before a run is queued, from files and measurements only:
the rows a tokenizer change adds to the embeddings, and the data's tokens and blocks (from a
finished scan job of the same dataset, tokenizer and block size), hence steps and time; and
parameters and memory per device from the model's config.json (`model_estimates.py`).

Nothing here guesses: a figure the panel has not measured is left out (None), and the form says
how to get it (scan the dataset).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session, col, select

from backend.models import Job, Run
from backend.services.model_estimates import ModelEstimate, model_estimate
from cpt_contract.runconfig.schema import RunConfig
from cpt_contract.statuses import RunStatus


class VocabEstimate(BaseModel):
    model_vocab: int | None
    tokenizer_vocab: int | None
    new_rows: int | None
    init: str | None


class DataEstimate(BaseModel):
    scan_job: str | None = None
    tokens: int | None = None
    blocks: int | None = None
    train_blocks: int | None = None
    steps_per_epoch: int | None = None
    total_steps: int | None = None
    total_tokens: int | None = None
    #: From the last finished run of the same model on the same queue (measured tokens/s).
    tokens_per_second: float | None = None
    seconds: float | None = None


class Estimates(BaseModel):
    vocab: VocabEstimate
    data: DataEstimate
    #: Parameters (total/trainable), tokens per step and memory per device by component.
    model: ModelEstimate


def _json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def model_vocab(model_dir: str | None) -> int | None:
    if not model_dir:
        return None
    config = _json(Path(model_dir) / "config.json") or {}
    value = config.get("vocab_size") or (config.get("text_config") or {}).get("vocab_size")
    return int(value) if isinstance(value, int) else None


def tokenizer_vocab(tokenizer_dir: str | None) -> int | None:
    """len(tokenizer) from ``tokenizer.json``: the largest id of the vocabulary or added tokens + 1."""
    if not tokenizer_dir:
        return None
    data = _json(Path(tokenizer_dir) / "tokenizer.json")
    if data is None:
        return None
    vocab = (data.get("model") or {}).get("vocab")
    ids = list(vocab.values()) if isinstance(vocab, dict) else list(range(len(vocab or [])))
    ids += [t.get("id", -1) for t in data.get("added_tokens") or [] if isinstance(t, dict)]
    ints = [i for i in ids if isinstance(i, int)]
    return max(ints) + 1 if ints else None


def vocab_estimate(config: RunConfig) -> VocabEstimate:
    m = config.model
    base = model_vocab(m.model_name_or_path)
    tok = tokenizer_vocab(m.tokenizer_name_or_path or m.model_name_or_path)
    new_rows = max(0, tok - base) if base is not None and tok is not None else None
    init = getattr(m, "new_embeddings_init", None) if new_rows else None
    return VocabEstimate(model_vocab=base, tokenizer_vocab=tok, new_rows=new_rows, init=init)


def _scan_for(session: Session, config: RunConfig) -> Job | None:
    d = config.data
    paths = [p for p in (d.dataset_dir, d.train_file) if p]
    tokenizer = config.model.tokenizer_name_or_path or config.model.model_name_or_path
    scans = session.exec(
        select(Job)
        .where(Job.kind == "scan", Job.status == RunStatus.succeeded)
        .order_by(col(Job.finished_at).desc())
        .limit(200)
    )
    for job in scans:
        p = job.params
        if (
            p.get("paths") == paths
            and p.get("tokenizer") == tokenizer
            and (p.get("block_size") == d.block_size)
        ):
            return job
    return None


def _measured_speed(session: Session, config: RunConfig) -> float | None:
    run = session.exec(
        select(Run)
        .where(
            Run.status == RunStatus.succeeded,
            Run.queue == config.launch.queue,
            Run.model == (config.model.model_name_or_path or "scratch"),
            col(Run.tokens_per_second).is_not(None),
        )
        .order_by(col(Run.finished_at).desc())
    ).first()
    return run.tokens_per_second if run is not None else None


def data_estimate(session: Session, config: RunConfig) -> DataEstimate:
    job = _scan_for(session, config)
    if job is None or not job.result:
        return DataEstimate()
    totals = job.result.get("totals") or {}
    tokens, blocks = totals.get("tokens"), totals.get("blocks")
    out = DataEstimate(scan_job=job.id, tokens=tokens, blocks=blocks)
    if not isinstance(blocks, int):
        return out
    t, launch = config.training, config.launch
    held_out = 0 if config.data.validation_file else config.data.validation_split_percentage
    out.train_blocks = blocks - math.ceil(blocks * held_out)
    per_step = t.per_device_train_batch_size * t.gradient_accumulation_steps
    per_step *= launch.nproc_per_node * launch.nnodes
    out.steps_per_epoch = max(1, out.train_blocks // per_step) if out.train_blocks else 0
    out.total_steps = (
        t.max_steps if t.max_steps > 0 else math.ceil(out.steps_per_epoch * t.num_train_epochs)
    )
    block_tokens = (tokens // blocks) if isinstance(tokens, int) and blocks else None
    if block_tokens:
        out.total_tokens = out.total_steps * per_step * block_tokens
    out.tokens_per_second = _measured_speed(session, config)
    if out.tokens_per_second and out.total_tokens:
        out.seconds = out.total_tokens / out.tokens_per_second
    return out


def _fixed_steps(session: Session, config: RunConfig, out: DataEstimate, per_step: int) -> None:
    """Without a scan, ``max_steps`` still fixes the steps and tokens (hence the time)."""
    steps = config.training.max_steps
    if out.total_steps is not None or steps <= 0:
        return
    out.total_steps, out.total_tokens = steps, steps * per_step
    out.tokens_per_second = _measured_speed(session, config)
    if out.tokens_per_second:
        out.seconds = out.total_tokens / out.tokens_per_second


def estimates(session: Session, config: RunConfig) -> Estimates:
    vocab = vocab_estimate(config)
    data = data_estimate(session, config)
    model = model_estimate(config, vocab.tokenizer_vocab)
    if model.tokens_per_step:
        _fixed_steps(session, config, data, model.tokens_per_step)
    return Estimates(vocab=vocab, data=data, model=model)
