"""What the launch form shows before a run is queued, from files and measurements only:
the rows a tokenizer change adds to the embeddings, and the data's tokens and blocks (from a
finished scan job of the same dataset, tokenizer and block size), hence steps and time; and
parameters and memory per device from the model's config.json (`model_estimates.py`).

Nothing here guesses: a figure the panel has not measured is left out (None), and the form says
how to get it (scan the dataset).
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session, col, select

from backend.models import Job, Run, RunEvent
from backend.services.eval_time import Measured, eval_time
from backend.services.model_estimates import BYTES, ModelEstimate, model_estimate
from cpt_contract.runconfig.schema import RunConfig
from cpt_contract.statuses import RunStatus


class VocabEstimate(BaseModel):
    model_vocab: int | None
    tokenizer_vocab: int | None
    #: Rows the matrix grows by (past its padding, if any).
    new_rows: int | None
    init: str | None
    #: Padded rows (past the base tokenizer, e.g. Qwen's) the extension's tokens take first.
    reused_rows: int | None = None


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


class EvalEstimate(BaseModel):
    """Held-out evaluation time per evaluation, scoring and sampling apart
    (``eval_time.py``): from the last run of the same model on the same queue that measured
    them, else from the queue's measured training speed, else from the model's size and the
    budget. None where not enough is known."""

    evaluations: int | None = None
    #: Characters scored per evaluation (the sets' budgets; None: a set counted in documents
    #: or packed blocks, whose characters are known only once read).
    characters: int | None = None
    #: Scoring + sampling, one evaluation.
    seconds_each: float | None = None
    scoring_seconds: float | None = None
    sampling_seconds: float | None = None
    #: measured_eval | measured_training | model_size (eval_time.Basis).
    scoring_basis: str | None = None
    sampling_basis: str | None = None
    #: Generations per evaluation (each prompt greedy and sampled) and their tokens at most.
    samples: int = 0
    sample_tokens: int = 0
    tokens_per_char: float | None = None
    #: From a scan of the run's data with its tokenizer (else an assumed ratio).
    tokens_per_char_measured: bool = False
    #: Sampling would take longer than scoring the held-out text (the preview warns).
    sampling_exceeds_scoring: bool = False
    measured_run: str | None = None
    measured_seconds: float | None = None
    measured_characters: int | None = None


class DiskEstimate(BaseModel):
    """Checkpoints against the space they need: one checkpoint's saved weights (LoRA: the
    adapter and the modules_to_save, three copies of those with a resized vocabulary; full:
    every weight) plus the optimizer state
    (AdamW: 2 states per trainable weight at its dtype, 12 B with DeepSpeed's fp32 master),
    times how many are kept at once, against the free space of the runs directory's volume as
    the API sees it (the workers share it in the panel's deployments)."""

    checkpoint_bytes: int | None = None
    kept: int | None = None
    total_bytes: int | None = None
    free_bytes: int | None = None
    path: str | None = None


class Estimates(BaseModel):
    vocab: VocabEstimate
    data: DataEstimate
    evaluation: EvalEstimate
    disk: DiskEstimate
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
    reused = None
    own = tokenizer_vocab(m.model_name_or_path) if m.tokenizer_name_or_path else None
    if base is not None and tok is not None and own is not None and own < min(tok, base):
        reused = min(tok, base) - own  # worker/training/modeling.py::extend_vocabulary
    init = getattr(m, "new_embeddings_init", None) if new_rows or reused else None
    return VocabEstimate(
        model_vocab=base, tokenizer_vocab=tok, new_rows=new_rows, init=init, reused_rows=reused
    )


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


def _last_measured(session: Session, config: RunConfig, measured: Any) -> Run | None:
    """The newest succeeded run of the same model (its path, not only its folder's name, the
    runs table's label) on the same queue that has the ``measured`` column."""
    path = config.model.model_name_or_path
    label = Path(path).name if path else "scratch"
    candidates = session.exec(
        select(Run)
        .where(
            Run.status == RunStatus.succeeded,
            Run.queue == config.launch.queue,
            Run.model == label,
            col(measured).is_not(None),
        )
        .order_by(col(Run.finished_at).desc())
        .limit(50)
    ).all()
    for run in candidates:
        if (run.config.get("model") or {}).get("model_name_or_path") == path:
            return run
    return None


def _measured_speed(session: Session, config: RunConfig) -> float | None:
    run = _last_measured(session, config, Run.tokens_per_second)
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


def _eval_characters(config: RunConfig) -> int | None:
    d = config.data
    total = 0
    budgets: list[int | None] = []
    for spec in (d.eval_sets or {}).values():
        if spec.max_characters is not None:
            budgets.append(spec.max_characters)
        elif spec.max_documents is not None:
            budgets.append(None)
        else:
            budgets.append(d.eval_max_characters)
    if d.validation_file:
        budgets.append(None if d.max_eval_samples else d.eval_max_characters)
    elif d.validation_split_percentage:
        budgets.append(None)  # packed blocks: characters known once decoded
    for b in budgets:
        if b is None:
            return None
        total += b
    return total or None


def _evaluations(config: RunConfig, steps: int | None) -> int | None:
    t = config.training
    if steps is None:
        return None
    n = 1 if t.eval_at_start else 0
    if t.eval_steps:
        n += steps // t.eval_steps
        n += 0 if steps % t.eval_steps == 0 else 1  # the final evaluation
    else:
        n += 1
    return n


def _sample_count(config: RunConfig) -> int:
    prompts = config.training.eval_prompts or {}
    return 2 * sum(len(group) for group in prompts.values())  # greedy and sampled


def _measured_eval(session: Session, run: Run) -> tuple[Measured | None, int | None]:
    """The run's last evaluation split into scoring and sampling (None: an older run that did
    not split it), and the characters its evaluations scored."""
    start = session.exec(
        select(RunEvent)
        .where(RunEvent.run_id == run.id, RunEvent.kind == "start")
        .order_by(col(RunEvent.seq).desc())
    ).first()
    sets = (start.data or {}).get("eval_sets") if start is not None else None
    chars = sum(int(s.get("characters") or 0) for s in sets or [] if isinstance(s, dict))
    evals = session.exec(
        select(RunEvent)
        .where(RunEvent.run_id == run.id, RunEvent.kind == "eval")
        .order_by(col(RunEvent.seq).desc())
        .limit(20)
    ).all()
    for event in evals:
        d = event.data or {}
        score, sample = d.get("eval_score_seconds"), d.get("eval_sample_seconds")
        tokens = d.get("eval_sample_tokens")
        if isinstance(score, int | float) and isinstance(sample, int | float) and chars:
            return Measured(float(score), chars, float(sample), int(tokens or 0)), chars
    return None, chars or None


def _scan_tokens_per_char(session: Session, config: RunConfig) -> float | None:
    job = _scan_for(session, config)
    totals = (job.result or {}).get("totals") or {} if job is not None else {}
    tokens, chars = totals.get("tokens"), totals.get("characters")
    if isinstance(tokens, int) and isinstance(chars, int) and tokens > 0 and chars > 0:
        return tokens / chars
    return None


def eval_estimate(
    session: Session,
    config: RunConfig,
    steps: int | None,
    model: ModelEstimate | None = None,
    cpu_only: bool = False,
) -> EvalEstimate:
    t = config.training
    samples = _sample_count(config)
    out = EvalEstimate(
        evaluations=_evaluations(config, steps),
        characters=_eval_characters(config),
        samples=samples,
        sample_tokens=samples * t.sample_max_new_tokens,
    )
    measured: Measured | None = None
    run = _last_measured(session, config, Run.eval_seconds)
    if run is not None and run.eval_seconds:
        measured, chars = _measured_eval(session, run)
        out.measured_run, out.measured_seconds = run.id, run.eval_seconds
        out.measured_characters = chars
    params = model.params.total if model is not None and model.params else None
    dtype = model.memory.weight_dtype if model is not None and model.memory else "float32"
    est = eval_time(
        characters=out.characters,
        sample_tokens=out.sample_tokens,
        params=params,
        layers=model.layers if model is not None else None,
        weight_bytes=BYTES.get(dtype, 4),
        cpu_only=cpu_only,
        measured=measured,
        training_tokens_per_second=_measured_speed(session, config),
        tokens_per_char=_scan_tokens_per_char(session, config),
    )
    if est is None:
        return out
    out.scoring_seconds, out.sampling_seconds = est.scoring_seconds, est.sampling_seconds
    out.scoring_basis, out.sampling_basis = est.scoring_basis, est.sampling_basis
    out.tokens_per_char = round(est.tokens_per_char, 4)
    out.tokens_per_char_measured = est.tokens_per_char_measured
    if est.scoring_seconds is not None and est.sampling_seconds is not None:
        out.seconds_each = est.scoring_seconds + est.sampling_seconds
        out.sampling_exceeds_scoring = est.sampling_seconds > est.scoring_seconds
    return out


def sampling_warning(e: EvalEstimate) -> str | None:
    """The preview's warning when the samples would take longer than the scoring."""
    if not e.sampling_exceeds_scoring or e.sampling_seconds is None:
        return None
    return (
        f"sampling ({e.samples} generations of up to {e.sample_tokens // max(1, e.samples)} "
        f"tokens, about {e.sampling_seconds:.0f} s) would take longer than scoring the held-out "
        f"text (about {e.scoring_seconds or 0:.0f} s) at every evaluation: lower "
        "training.sample_max_new_tokens or give fewer training.eval_prompts"
    )


def disk_estimate(
    config: RunConfig,
    model: ModelEstimate,
    steps: int | None,
    runs_dir: Path | None,
    resized: bool = False,
) -> DiskEstimate:
    out = DiskEstimate()
    if runs_dir is not None:
        target = runs_dir
        while not target.exists() and target != target.parent:
            target = target.parent  # the volume it will be made on
        with contextlib.suppress(OSError):
            out.free_bytes, out.path = shutil.disk_usage(target).free, str(runs_dir)
    t = config.training
    saves = steps // t.save_steps if steps is not None else None
    if t.save_total_limit is not None:
        out.kept = min(saves, t.save_total_limit) if saves is not None else t.save_total_limit
    else:
        out.kept = saves
    p, mem = model.params, model.memory
    if p is None or mem is None:
        return out
    wbytes = BYTES.get(mem.weight_dtype, 4)
    if config.method.finetuning_type == "full":
        saved = p.total * wbytes
    else:
        # With a resized vocabulary PEFT saves each modules_to_save layer three times (the
        # trained copy, the original module, the resized base layer); otherwise once.
        copies = 3 if resized else 1
        saved = (p.lora + p.modules_to_save * copies) * wbytes
    mixed = mem.zero_stage > 0 and wbytes == 2
    optimizer = p.trainable * (12 if mixed else 2 * wbytes)
    out.checkpoint_bytes = saved + optimizer
    if out.kept is not None:
        out.total_bytes = out.checkpoint_bytes * out.kept
    return out


def estimates(
    session: Session, config: RunConfig, runs_dir: Path | None = None, cpu_only: bool = False
) -> Estimates:
    vocab = vocab_estimate(config)
    data = data_estimate(session, config)
    model = model_estimate(config, vocab.tokenizer_vocab)
    if model.tokens_per_step:
        _fixed_steps(session, config, data, model.tokens_per_step)
    evaluation = eval_estimate(session, config, data.total_steps, model, cpu_only)
    disk = disk_estimate(config, model, data.total_steps, runs_dir, bool(vocab.new_rows))
    return Estimates(vocab=vocab, data=data, model=model, evaluation=evaluation, disk=disk)
