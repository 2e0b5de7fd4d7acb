"""Runs: create (preset + deep merge + validation), clone, resume, cancel, delete, show."""

from __future__ import annotations

import json
import re
import secrets
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Text, cast
from sqlmodel import Session, col, func, or_, select

from backend.models import (
    TAG_PATTERN,
    Checkpoint,
    Job,
    Run,
    RunClone,
    RunCreate,
    RunPublic,
    RunUpdate,
    utcnow,
)
from backend.services import disks, files, hub_models, preflight, sorting, state_machine
from backend.services.errors import Conflict, NotFound
from backend.services.paths import PathNotAllowed, escaping_entry, is_under, resolve_allowed
from backend.services.validation import ConfigInvalid, check_size, config_errors, error
from cpt_contract.architectures import unsupported
from cpt_contract.jobs import HUB_PREFIX, hub_id_of, is_hub_id
from cpt_contract.outcomes import LAST_CHECKPOINT
from cpt_contract.run_paths import RunPaths
from cpt_contract.runconfig.argv import LaunchContext, display_command, torchrun_argv
from cpt_contract.runconfig.presets import PRESET_LABELS, preset_config
from cpt_contract.runconfig.schema import RunConfig, deep_merge
from cpt_contract.settings import Settings, get_settings
from cpt_contract.statuses import (
    ACTIVE_STATUSES,
    RESUMABLE_STATUSES,
    RESUME_LAST_STATUSES,
    WORKER_STATUSES,
    RunStatus,
)

#: What each directory field must be usable as (``files.problem``), checked at submit.
_USABLE: dict[tuple[str, ...], files.FileKind] = {
    ("model", "model_name_or_path"): "model",
    ("model", "tokenizer_name_or_path"): "tokenizer",
    ("data", "dataset_dir"): "dataset",
    ("method", "peft_path"): "adapter",
}

#: Which kind of filesystem object each path field must be.
_DIR_FIELDS = {("data", "dataset_dir"), ("method", "peft_path")}
_FILE_FIELDS = {("data", "train_file"), ("data", "validation_file")}


# --- locations ------------------------------------------------------------------------------


def run_paths(settings: Settings, run_id: str) -> RunPaths:
    return RunPaths.of(settings.runs_dir, run_id)


def run_dir(settings: Settings, run_id: str) -> Path:
    return run_paths(settings, run_id).run_dir


def output_dir(settings: Settings, run_id: str) -> Path:
    return run_paths(settings, run_id).output_dir


def launch_context(
    settings: Settings, run_id: str, resume_path: str | None = None, use_cpu: bool = False
) -> LaunchContext:
    """Where the worker will put things for this run (the data dir as seen by the API)."""
    paths = run_paths(settings, run_id)
    return LaunchContext(
        output_dir=str(paths.output_dir),
        data_cache_dir=str(settings.data_cache_dir),
        deepspeed_config=str(paths.ds_config),
        resume_from_checkpoint=resume_path,
        run_id=run_id,
        use_cpu=use_cpu,
    )


def cpu_only_queue(settings: Settings, session: Session, queue: str) -> bool:
    """Every live worker of the queue is CPU-only: the worker will add ``--use_cpu``, so the
    preview shows it too (none live: the command stays as for a GPU worker)."""
    workers = preflight.live_workers(settings, session, queue)
    return bool(workers) and all(w.cpu_only for w in workers)


def command_for(
    settings: Settings,
    run_id: str,
    config: RunConfig,
    resume: str | None = None,
    use_cpu: bool = False,
) -> dict[str, Any]:
    argv = torchrun_argv(config, launch_context(settings, run_id, resume, use_cpu))
    return {"argv": argv, "command": display_command(argv)}


# --- config validation -----------------------------------------------------------------------


def preset_dict(settings: Settings, preset: str | None) -> dict[str, Any]:
    base: dict[str, Any] = {"launch": {"queue": settings.queue}}
    if preset is None:
        return base
    try:
        return deep_merge(base, preset_config(preset, settings.demo_dir))
    except KeyError:
        known = ", ".join(PRESET_LABELS)
        raise ConfigInvalid(
            [
                error(
                    ["body", "preset"],
                    f"unknown preset '{preset}': use one of {known}, "
                    "or leave it out and send a complete config",
                    "unknown_preset",
                )
            ]
        ) from None


def _usable_as(key: tuple[str, ...], path: Path) -> files.FileKind | None:
    if key[:2] == ("data", "data_sources"):
        return "dataset" if path.is_dir() else None
    kind = _USABLE.get(key)
    # A tokenizer may be a model's own directory or a single file; only directories are judged.
    return kind if kind and path.is_dir() else None


def label_adapters(session: Session, found: list[dict[str, str]]) -> list[dict[str, str]]:
    """An adapter that is a run's checkpoint (or its final output) is labelled by the run's
    name and step, not by a path."""
    by_path = {f["path"]: f for f in found}
    if not by_path:
        return found
    for ckpt, run in session.exec(
        select(Checkpoint, Run).where(
            Checkpoint.run_id == Run.id, col(Checkpoint.path).in_(list(by_path))
        )
    ).all():
        by_path[ckpt.path]["label"] = f"{run.name or run.id} · step {ckpt.step}"
    for run in session.exec(select(Run).where(col(Run.output_dir).in_(list(by_path)))).all():
        by_path[run.output_dir]["label"] = f"{run.name or run.id} · final (step {run.step})"
    return found


def label_tokenizers(session: Session, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tokenizers by what they are: an extended tokenizer by its job's name with its base,
    languages and size (``group`` "extended", ``base`` for the form's mismatch mark); a run's
    output or checkpoint (it holds the run's tokenizer copy) in group "runs"; the rest, models'
    own tokenizers, in group "tokenizers". Extended first, runs last."""
    by_path = {f["path"]: f for f in found}
    if not by_path:
        return found
    for f in found:
        f["group"] = "tokenizers"
    jobs = session.exec(
        select(Job).where(Job.kind == "tokenizer", Job.status == RunStatus.succeeded)
    ).all()
    for job in jobs:
        result = job.result or {}
        entry = by_path.get(str(result.get("output", "")))
        if entry is None:
            continue
        base = str(result.get("base", ""))
        corpus = [Path(str(p)).stem for p in (job.params or {}).get("corpus", [])]
        languages = ", ".join(corpus[:3]) + (" …" if len(corpus) > 3 else "")
        name = (job.params or {}).get("name") or f"job {job.id}"
        entry["label"] = (
            f"{name} · {Path(base).name} + {result.get('added', '?')} tokens"
            f"{f' ({languages})' if languages else ''} · {result.get('vocab_size', '?')} in all"
        )
        entry["group"], entry["base"] = "extended", base
    outputs = [r for r in session.exec(select(Run.output_dir, Run.name, Run.id)).all() if r[0]]
    for f in found:
        if f["group"] != "tokenizers":
            continue
        for out, name, rid in outputs:
            parent = str(Path(out).parent)
            if f["path"] == parent or f["path"].startswith(parent + "/"):
                rel = Path(f["path"]).relative_to(parent)
                f["group"], f["label"] = "runs", f"{name or rid} · {rel}"
                break
    order = {"extended": 0, "tokenizers": 1, "runs": 2}
    return sorted(found, key=lambda f: order[f["group"]])


#: The fields whose directory's config.json decides the architecture trained.
_MODEL_CONFIG_FIELDS = {("model", "model_name_or_path"), ("model", "config_name")}


def architecture_problem(path: Path) -> str | None:
    """Why the model (or config) directory's architecture is not trained here (None: it is, or
    there is no readable config.json, which the model check reports itself)."""
    try:
        data = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return unsupported(data) if isinstance(data, dict) else None


def validate_config(settings: Settings, merged: dict[str, Any], loc: list[str | int]) -> RunConfig:
    """Schema validation, then the allowed-roots and existence checks of every path."""
    try:
        config = RunConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigInvalid(config_errors(exc, loc)) from None
    errors = []
    resolved: dict[tuple[str, ...], str] = {}
    for key, raw in config.path_fields().items():
        field_loc = [*loc, *(int(k) if k.isdigit() else k for k in key)]
        if key == ("model", "model_name_or_path"):
            # A Hub id stands for where its download lands; not there yet: the run waits for it.
            target = hub_models.hub_target(settings, raw, config.model.model_revision)
            if target is not None and not target.exists():
                resolved[key] = str(target)
                continue
            raw = str(target) if target is not None else raw
        try:
            path = resolve_allowed(raw, settings.roots)
        except PathNotAllowed as exc:
            msg = str(exc)
            if key == ("model", "model_name_or_path") and is_hub_id(raw):
                msg += f"; a Hub id is written {HUB_PREFIX}{raw}"
            errors.append(error(field_loc, msg, "path_not_allowed"))
            continue
        if not path.exists():
            errors.append(
                error(
                    field_loc,
                    f"'{raw}' does not exist: pick an existing path under the allowed roots "
                    f"({', '.join(map(str, settings.roots))})",
                    "path_missing",
                )
            )
        elif key in _DIR_FIELDS and not path.is_dir():
            errors.append(error(field_loc, f"'{raw}' is a file: give its directory", "not_a_dir"))
        elif key in _FILE_FIELDS and not path.is_file():
            errors.append(error(field_loc, f"'{raw}' is a directory: give a file", "not_a_file"))
        elif problem := escaping_entry(path, settings.roots):
            errors.append(error(field_loc, problem, "path_escapes_roots"))
        elif (kind := _usable_as(key, path)) and (
            unusable := files.problem(kind, path, roots=settings.roots)
        ):
            errors.append(
                error(field_loc, f"'{raw}' {unusable}", f"not_a_{kind}"),
            )
        elif key in _MODEL_CONFIG_FIELDS and (why := architecture_problem(path)):
            errors.append(error(field_loc, f"'{raw}': {why}", "unsupported_architecture"))
        else:
            resolved[key] = str(path)
    if errors:
        raise ConfigInvalid(errors)
    for key, value in resolved.items():
        if key[:2] == ("data", "data_sources"):
            (config.data.data_sources or [])[int(key[2])].path = value
        elif key[:2] == ("data", "eval_sets"):
            (config.data.eval_sets or {})[key[2]].path = value
        else:
            section, name = key
            setattr(getattr(config, section), name, value)
    return config


def build_config(
    settings: Settings,
    preset: str | None,
    override: dict[str, Any],
    session: Session | None = None,
) -> tuple[RunConfig, list[str]]:
    """The validated config and the warnings. With a session, also the preflight against the
    queue's live workers; its errors come together with the schema's and the paths' errors."""
    merged = deep_merge(preset_dict(settings, preset), override)
    return checked_config(settings, merged, session)


def checked_config(
    settings: Settings, merged: dict[str, Any], session: Session | None
) -> tuple[RunConfig, list[str]]:
    check_size(merged, ["body", "config"])
    fit_errors, warnings = preflight.check(settings, session, merged) if session else ([], [])
    try:
        config = validate_config(settings, merged, ["body", "config"])
    except ConfigInvalid as exc:
        raise ConfigInvalid(exc.errors + fit_errors) from None
    if fit_errors:
        raise ConfigInvalid(fit_errors)
    return config, warnings


# --- creation ----------------------------------------------------------------------------------


def _new_id(session: Session) -> str:
    while True:
        run_id = "r-" + secrets.token_hex(3)
        if session.get(Run, run_id) is None:
            return run_id


def _model_label(config: RunConfig) -> str:
    path = config.model.model_name_or_path
    return Path(path).name if path else "scratch"


def new_run(
    settings: Settings, session: Session, name: str | None, preset: str | None, config: RunConfig
) -> Run:
    run_id = _new_id(session)
    label = _model_label(config)
    run = Run(
        id=run_id,
        name=(name or "").strip() or f"{preset or config.method.finetuning_type} {label} {run_id}",
        preset=preset,
        config=config.model_dump(mode="json"),
        method=config.method.finetuning_type,
        model=label,
        queue=config.launch.queue,
        output_dir=str(output_dir(settings, run_id)),
        max_steps=config.training.max_steps if config.training.max_steps > 0 else None,
    )
    session.add(run)
    return run


def create_run(settings: Settings, session: Session, body: RunCreate) -> Run:
    config, _ = build_config(settings, body.preset, body.config, session)
    disks.check_checkpoints_fit(session, settings, config)
    return new_run(settings, session, body.name, body.preset, config)


def model_download(settings: Settings, session: Session, body: RunCreate) -> Job | None:
    """The download job a new run's Hub-id model waits for (started or joined), if any."""
    model = deep_merge(preset_dict(settings, body.preset), body.config).get("model") or {}
    value, revision = model.get("model_name_or_path"), model.get("model_revision") or "main"
    target = hub_models.hub_target(settings, value, revision)
    if target is None or target.exists():
        return None
    repo = hub_id_of(value)
    assert repo is not None  # hub_target answered for a Hub id only
    return hub_models.start_download(settings, session, repo, str(revision))


def clone_run(settings: Settings, session: Session, source: Run, body: RunClone) -> Run:
    merged = deep_merge(source.config, body.config)
    config, _ = checked_config(settings, merged, session)
    disks.check_checkpoints_fit(session, settings, config)
    name = body.name or f"{source.name} (clone)"
    return new_run(settings, session, name[:200], source.preset, config)


# --- lookups -----------------------------------------------------------------------------------


def get_run(session: Session, run_id: str, *, for_update: bool = False) -> Run:
    stmt = select(Run).where(Run.id == run_id)
    if for_update:
        stmt = stmt.with_for_update()
    run = session.exec(stmt).first()
    if run is None:
        raise NotFound(f"run {run_id} not found")
    return run


def list_runs(
    session: Session,
    statuses: list[RunStatus] | None,
    q: str | None,
    limit: int,
    offset: int,
    tags: list[str] | None = None,
    sort: str | None = None,
) -> tuple[list[Run], int]:
    stmt = select(Run)
    count = select(func.count()).select_from(Run)
    conds: list[Any] = []
    if statuses:
        conds.append(col(Run.status).in_([s.value for s in statuses]))
    if q:
        like = f"%{q.lower()}%"
        conds.append(
            or_(
                func.lower(Run.name).like(like),
                func.lower(Run.id).like(like),
                func.lower(Run.model).like(like),
                func.lower(func.coalesce(Run.preset, "")).like(like),
                func.lower(Run.note).like(like),
                func.lower(cast(Run.tags, Text)).like(like),
            )
        )
    for tag in tags or []:
        # Tags are a JSON list of strings: '"tag"' in its text is an exact tag match.
        conds.append(cast(Run.tags, Text).like(f'%"{tag}"%'))
    for cond in conds:
        stmt, count = stmt.where(cond), count.where(cond)
    stmt = stmt.order_by(*sorting.order_by(sort)).offset(offset).limit(limit)
    return list(session.exec(stmt).all()), int(session.exec(count).one())


def update_run(run: Run, body: RunUpdate) -> Run:
    """Name, tags and note: allowed in every status (they describe the run, not its training)."""
    if body.name is not None:
        run.name = body.name.strip() or run.name
    if body.tags is not None:
        bad = [t for t in body.tags if not re.fullmatch(TAG_PATTERN, t)]
        if bad:
            raise ConfigInvalid(
                [
                    error(
                        ["body", "tags", body.tags.index(bad[0])],
                        f"tag {bad[0]!r} is not a tag: use 1-40 letters, digits or -_.:/+ "
                        "(no spaces), e.g. 'lora-r8'",
                        "bad_tag",
                    )
                ]
            )
        run.tags = list(dict.fromkeys(body.tags))  # unique, in the order given
    if body.note is not None:
        run.note = body.note
    run.updated_at = utcnow()
    return run


def _has_checkpoint(run: Run) -> bool:
    """A checkpoint of ``run`` on disk, read in the run's own session or a short new one."""
    from sqlalchemy.orm import object_session

    from backend.core.db import get_engine
    from backend.services.checkpoints import runs_with_checkpoint

    settings = get_settings()
    session = object_session(run)
    if isinstance(session, Session):
        return run.id in runs_with_checkpoint(settings, session, [run.id])
    with Session(get_engine(settings)) as fresh:
        return run.id in runs_with_checkpoint(settings, fresh, [run.id])


def to_public(
    run: Run, now: datetime | None = None, has_checkpoint: bool | None = None
) -> RunPublic:
    """The API's view of a run; ``has_checkpoint`` where the caller looked already (a page of
    runs in one query), else looked up for a run "Resume" depends on."""
    public = RunPublic.model_validate(run, from_attributes=True)
    if run.status in RESUME_LAST_STATUSES:
        public.has_checkpoint = (
            has_checkpoint if has_checkpoint is not None else _has_checkpoint(run)
        )
    # The stored ETA was computed at ingest time; count down since then.
    if run.eta_seconds is not None and run.eta_at is not None and run.status in WORKER_STATUSES:
        now = now or utcnow()
        at = run.eta_at if run.eta_at.tzinfo else run.eta_at.replace(tzinfo=now.tzinfo)
        public.eta_seconds = max(0.0, run.eta_seconds - (now - at).total_seconds())
    else:
        public.eta_seconds = None
    if public.eta_seconds is not None:
        public.eta_until = (now or utcnow()) + timedelta(seconds=public.eta_seconds)
    # Duration: the attempts that ended, plus the current one while a worker holds it.
    seconds = run.attempts_seconds or 0.0
    if run.started_at is not None and run.status in WORKER_STATUSES:
        seconds += state_machine.seconds_between(run.started_at, now or utcnow())
    public.duration_seconds = seconds if (seconds or run.first_started_at) else None
    if run.status in WORKER_STATUSES:
        public.lost_after_seconds = get_settings().worker_lost_seconds
    return public


# --- actions -----------------------------------------------------------------------------------


def cancel_run(run: Run) -> Run:
    """queued → cancelled at once; a run a worker holds → cancelling (the worker stops it)."""
    if run.status == RunStatus.queued:
        return state_machine.transition(run, RunStatus.cancelled, "cancelled before it started")
    if run.status == RunStatus.cancelling:
        return run  # a second click is not an error
    return state_machine.transition(run, RunStatus.cancelling, "cancel requested", verb="cancel")


def resume_run(session: Session, run: Run, checkpoint: str) -> Run:
    checkpoints = session.exec(
        select(Checkpoint)
        .where(Checkpoint.run_id == run.id)
        .order_by(col(Checkpoint.step).desc(), col(Checkpoint.id).desc())
    ).all()
    if run.status not in RESUMABLE_STATUSES:
        raise state_machine.IllegalTransition(run.status, RunStatus.queued, "resume")
    if checkpoint == LAST_CHECKPOINT and run.status not in RESUME_LAST_STATUSES:
        raise Conflict(
            f"run {run.id} is {run.status}: its newest checkpoint is its end; resume from an "
            "earlier checkpoint, or clone it to train further"
        )
    if not checkpoints:
        raise Conflict(
            f"run {run.id} has no checkpoint to resume from (it stopped before its first save "
            f"every {run.config.get('training', {}).get('save_steps', '?')} steps): "
            "clone it to start again from the beginning"
        )
    if checkpoint != LAST_CHECKPOINT and checkpoint not in {c.name for c in checkpoints}:
        names = ", ".join(c.name for c in checkpoints)
        raise ConfigInvalid(
            [
                error(
                    ["body", "checkpoint"],
                    f"run {run.id} has no checkpoint '{checkpoint}': use 'last' or one of {names}",
                    "unknown_checkpoint",
                )
            ]
        )
    # The step the new attempt starts from: ``last`` is the newest checkpoint still on disk
    # (pretrain.py confirms it in its start event; a partial save may make it one older).
    if checkpoint == LAST_CHECKPOINT:
        on_disk = [c for c in checkpoints if Path(c.path).is_dir()]
        chosen = (on_disk or list(checkpoints))[0]
    else:
        chosen = next(c for c in checkpoints if c.name == checkpoint)
    return state_machine.resume(run, checkpoint, step=chosen.step)


def delete_run(settings: Settings, session: Session, run: Run) -> None:
    """Delete the rows (events, logs, checkpoints cascade); the caller commits."""
    if run.status in ACTIVE_STATUSES:
        raise Conflict(f"cannot delete a run that is {run.status}: cancel it first")
    session.delete(run)


def remove_run_dir(settings: Settings, run_id: str) -> None:
    """Remove the run's files, only ever inside the panel's own runs dir."""
    runs_root = settings.runs_dir.resolve()
    rdir = run_dir(settings, run_id).resolve()
    if rdir.is_dir() and rdir != runs_root and is_under(rdir, runs_root):
        shutil.rmtree(rdir, ignore_errors=True)
