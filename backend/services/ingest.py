"""What the worker ships: events.jsonl lines, log bytes, status reports, heartbeats.

Inserts are idempotent at the database level (ON CONFLICT DO NOTHING on the unique keys), so a
batch the worker re-sends after a lost answer never duplicates a row. Only the rows that are
new update the run's progress and go out on the bus.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from backend.core.dbapi import execute, executemany, query
from backend.models import Checkpoint, LogChunk, Run, Worker, utcnow
from backend.services import autoresume, progress, state_machine, summary
from backend.services.errors import Conflict
from backend.services.experiments import halving
from backend.services.metrics import write as metric_write
from backend.services.validation import ConfigInvalid, error
from cpt_contract.events import PAUSE_PHASES, PHASES
from cpt_contract.limits import INT32, INT64, REASON_MAX
from cpt_contract.outcomes import DEFAULT_FUTILE_ATTEMPTS, FailureKind
from cpt_contract.protocol import CHECKPOINT_NAME
from cpt_contract.statuses import TERMINAL_STATUSES, WORKER_STATUSES, RunStatus


def _insert(session: Session, model: type[Any]) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(model)


_PLAIN = (int, str, bool, type(None))


def _finite(value: Any) -> Any:
    """JSON (and PostgreSQL) has no NaN/Infinity: keep them as the strings JS would print."""
    if type(value) is dict:
        # The hot path (one flat dict per event, fresh from the request): returned as it is
        # when every value is plain, without a call per value.
        for v in value.values():
            t = type(v)
            if not (t in _PLAIN or (t is float and v - v == 0)):
                return {k: _finite(v) for k, v in value.items()}
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _dumps(data: dict[str, Any]) -> str:
    """An event's JSON text (orjson; the standard library for what it refuses, e.g. an integer
    beyond 64 bits)."""
    try:
        return orjson.dumps(data).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(data)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _int(value: Any, limit: int = INT32) -> int | None:
    """An integer column's value; None for non-numbers and what the column cannot hold."""
    num = _num(value)
    return int(num) if num is not None and abs(num) <= limit else None


# --- events ----------------------------------------------------------------------------------


class NewEvent(NamedTuple):
    """A just-stored event (a plain tuple: ORM objects, even frozen dataclasses, cost more to
    build for a batch than the insert)."""

    run_id: str
    attempt: int
    seq: int
    kind: str
    step: int | None
    time: float | None
    data: dict[str, Any]


_CHECKPOINT_NAME = re.compile(CHECKPOINT_NAME)


def checkpoint_problem(run: Run, data: Mapping[str, Any]) -> str | None:
    """A checkpoint is ``<the run's output dir>/checkpoint-N``, nothing else: its directory is
    what a user downloads, so a forged path must never point at the data dir or elsewhere."""
    name, path = data.get("name"), data.get("path")
    if not isinstance(path, str) or not path:
        return "a checkpoint event needs its path"
    base = os.path.basename(os.path.normpath(path))
    if name is not None and name != base:
        return f"name {str(name)[:80]!r} is not the last part of its path"
    if not _CHECKPOINT_NAME.match(base):
        return f"{base[:80]!r} is not a checkpoint name (checkpoint-<step>)"
    norm = os.path.normpath(path)
    if not os.path.isabs(norm) or not run.output_dir:
        return "a checkpoint path must be absolute"
    # Directly inside: normpath already folded any "..", so this is the whole rule.
    if os.path.dirname(norm) != os.path.normpath(run.output_dir):
        return f"{path[:200]!r} is not inside run {run.id}'s output dir ({run.output_dir})"
    return None


def check_events(run: Run, events: Sequence[Mapping[str, Any]]) -> None:
    """422 for a checkpoint event that does not name a checkpoint of this run."""
    errors = []
    for i, raw in enumerate(events):
        if raw.get("kind") == "checkpoint" and (problem := checkpoint_problem(run, raw)):
            errors.append(error(["body", "events", i, "path"], problem, "bad_checkpoint"))
    if errors:
        raise ConfigInvalid(errors)


def store_events(
    session: Session, run: Run, attempt: int, events: Sequence[Mapping[str, Any]]
) -> list[NewEvent]:
    """Insert the new events; returns only those that were not stored before, by seq."""
    check_events(run, events)
    rows: dict[int, NewEvent] = {}
    for raw in events:
        data = _finite(raw)
        seq = int(data["seq"])
        # Two rows with the same seq inside one batch: keep the first, like the database would.
        if seq not in rows:
            kind = str(data.get("kind", ""))[:32]
            rows[seq] = NewEvent(
                run.id, attempt, seq, kind, _int(data.get("step")), _num(data.get("time")), data
            )
    if not rows:
        return []
    # The seqs already stored (one index range scan), then a plain DB-API executemany of the
    # rest: SQLAlchemy's per-row parameter building cost more than the insert. The run's row
    # is locked (PostgreSQL) or the writer lock held (SQLite), so nobody inserts in between;
    # ON CONFLICT stays as the database's guarantee.
    stored = query(session.connection(), _STORED_SEQS_SQL, (run.id, attempt, min(rows), max(rows)))
    old = {int(x) for (x,) in stored}
    fresh = sorted((e for s, e in rows.items() if s not in old), key=lambda e: e.seq)
    executemany(
        session.connection(),
        _EVENTS_SQL_PG if session.get_bind().dialect.name == "postgresql" else _EVENTS_SQL,
        [(e.run_id, e.attempt, e.seq, e.kind, e.step, e.time, _dumps(e.data)) for e in fresh],
    )
    # The chart's store: only what is new, so a resend writes nothing twice.
    metric_write.add_events(
        session.connection(),
        run.id,
        fresh,
        float(run.tokens_seen) if run.tokens_seen is not None else None,
    )
    if attempt == run.attempt:
        _apply_all(session, run, fresh)
        if run.experiment_id is not None:
            # Early stopping is decided here, on the stored evaluation, never on log text.
            evals = [(e.step, e.data) for e in fresh if e.kind == "eval"]
            if evals:
                halving.on_evals(session, run, evals)
        metric_events = [e for e in fresh if e.kind in ("log", "eval")]
        if metric_events:
            run.metrics_summary = summary.fold_many(
                run.metrics_summary or {}, ((e.data, e.step) for e in metric_events)
            )
        progress.update_eta(session, run, max(rows))
    else:
        for event in fresh:
            if event.kind == "checkpoint":
                _upsert_checkpoint(session, run, event)
        _reached(run, attempt, fresh)
    run.last_seen_at = run.updated_at = utcnow()
    return fresh


def _reached(run: Run, attempt: int, events: list[NewEvent]) -> None:
    """An ended attempt's late events (shipped after it was declared lost, or by the worker
    that takes back its job) raise the step its entry in the attempt log says it reached."""
    steps = [e.step for e in events if e.step is not None and e.kind in ("log", "checkpoint")]
    if not steps:
        return
    log = [dict(e) for e in run.attempt_log or []]
    for entry in log:
        if entry.get("attempt") == attempt and (entry.get("step") or 0) < max(steps):
            entry["step"] = max(steps)
            run.attempt_log = log  # a new list: the JSON column only notices a reassignment
            return


#: Through the DB-API: SQLAlchemy's compiled-statement set-up cost ~20x this index range scan.
_STORED_SEQS_SQL = (
    "SELECT seq FROM run_events WHERE run_id = %s AND attempt = %s AND seq >= %s AND seq <= %s"
)
_EVENTS_SQL = (
    "INSERT INTO run_events (run_id, attempt, seq, kind, step, time, data) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (run_id, attempt, seq) DO NOTHING"
)
_EVENTS_SQL_PG = _EVENTS_SQL.replace("%s) ON", "%s::json) ON")


def _apply_all(session: Session, run: Run, events: list[NewEvent]) -> None:
    """Fold new events into the run's denormalised progress fields (each field set once: an
    instrumented attribute write per event and field cost more than the insert)."""
    upd: dict[str, Any] = {}
    logs: list[dict[str, Any]] = []

    def now(name: str) -> Any:
        return upd[name] if name in upd else getattr(run, name)

    for event in events:
        data = event.data
        kind = event.kind
        # Phase markers say step 0 before a resumed script has loaded its checkpoint: only
        # measured steps move the progress, never backwards within an attempt; the start event
        # (the checkpoint's step, as pretrain.py resolved it) sets it.
        if event.step is not None and kind in ("log", "eval", "checkpoint"):
            upd["step"] = max(event.step, now("step") or 0)
        if kind == "phase":
            phase = str(data.get("phase") or "")
            upd["phase"] = phase[:32] if phase in PHASES else None
            upd["phase_since"] = _when(event.time)
            previous, seconds = data.get("previous"), _num(data.get("previous_seconds"))
            if previous in PAUSE_PHASES and seconds is not None:
                name = "eval_seconds" if previous == "evaluating" else "save_seconds"
                upd[name] = progress.running_mean(now(name), seconds)
        elif kind == "start":
            if event.step is not None:
                upd["step"] = event.step
            upd["max_steps"] = _int(data.get("max_steps")) or now("max_steps")
            upd["tokens_per_step"] = _int(data.get("tokens_per_step"), INT64) or now(
                "tokens_per_step"
            )
        elif kind == "log":
            logs.append(data)
        elif kind == "eval":
            upd["eval_loss"] = _num(data.get("eval_loss"))
            upd["perplexity"] = _num(data.get("perplexity"))
        elif kind == "checkpoint":
            _upsert_checkpoint(session, run, event)
        elif kind == "end":
            upd["end_status"] = str(data.get("status") or "")[:32] or None
            upd["end_reason"] = str(data.get("reason") or "")[:REASON_MAX] or None
            if _num(data.get("perplexity")) is not None:
                upd["perplexity"] = _num(data.get("perplexity"))
    # The last log event that carries each field sets it: a batch of 200 needs only its end.
    pending = set(_LOG_FIELDS)
    for data in reversed(logs):
        for name in [name for name in pending if name in data]:
            pending.discard(name)
            value = data[name]
            upd[name] = _int(value, INT64) if name == "tokens_seen" else _num(value)
        if not pending:
            break
    for name, value in upd.items():
        if getattr(run, name) != value:
            setattr(run, name, value)


#: The run's columns a log event's field of the same name sets.
_LOG_FIELDS = ("loss", "epoch", "tokens_per_second", "tokens_seen")


def _when(time: float | None) -> datetime:
    return datetime.fromtimestamp(time, UTC) if time else utcnow()


def _upsert_checkpoint(session: Session, run: Run, event: NewEvent) -> None:
    data = event.data
    path = str(data.get("path") or "")
    name = str(data.get("name") or (path.rstrip("/").rsplit("/", 1)[-1] if path else ""))
    if not name:
        return
    values = {
        "run_id": run.id,
        "attempt": event.attempt,
        "name": name[:200],
        "step": event.step,
        "path": path[:1000],
        "created_at": datetime.fromtimestamp(event.time, utcnow().tzinfo)
        if event.time
        else utcnow(),
        "size_bytes": None,
    }
    # A resumed attempt may write checkpoint-N again: the newest one wins.
    stmt = (
        _insert(session, Checkpoint)
        .values(values)
        .on_conflict_do_update(
            index_elements=["run_id", "name"],
            set_={k: values[k] for k in ("attempt", "step", "path", "created_at", "size_bytes")},
        )
    )
    session.exec(stmt)  # type: ignore[call-overload]


# --- logs --------------------------------------------------------------------------------------


def log_end(session: Session, run_id: str, attempt: int) -> int:
    """Bytes stored so far: the end of the last chunk (an index lookup, not a scan; through
    the DB-API: the ORM's statement and row building cost ~50x SQLite's own 5 µs)."""
    rows = query(session.connection(), _LOG_END_SQL, (run_id, attempt))
    return int(rows[0][0] + rows[0][1]) if rows else 0


_LOG_END_SQL = (
    'SELECT "offset", length FROM log_chunks WHERE run_id = %s AND attempt = %s '
    'ORDER BY "offset" DESC LIMIT 1'
)
_LOG_INSERT_SQL = (
    'INSERT INTO log_chunks (run_id, attempt, "offset", length, text) '
    'VALUES (%s, %s, %s, %s, %s) ON CONFLICT (run_id, attempt, "offset") DO NOTHING'
)


def store_log(
    session: Session, run: Run, attempt: int, offset: int, text: str
) -> tuple[int, LogChunk | None]:
    """Store log bytes from ``offset``; returns (accepted_until, the new chunk or None)."""
    end = log_end(session, run.id, attempt)
    # PostgreSQL text cannot hold NUL; a space keeps every byte offset where it was.
    text = text.replace("\x00", " ")
    data = text.encode()
    run.last_seen_at = utcnow()
    if offset + len(data) <= end or not data:
        return max(end, offset + len(data)), None  # a resend of what we have
    if offset < end:
        # Overlap: keep only the new tail (rare; only after a partial resend).
        data = data[end - offset :]
        offset = end
        text = data.decode("utf-8", errors="replace")
    row = (run.id, attempt, offset, len(data), text)
    if not execute(session.connection(), _LOG_INSERT_SQL, row):
        return log_end(session, run.id, attempt), None  # stored meanwhile (a concurrent resend)
    chunk = LogChunk(run_id=run.id, attempt=attempt, offset=offset, length=len(data), text=text)
    return offset + len(data), chunk


# --- claim / status / heartbeat ------------------------------------------------------------------


def claim(run: Run, attempt: int, worker: str, instance: str | None = None) -> Run:
    if run.attempt != attempt or run.status != RunStatus.queued:
        raise Conflict(
            f"run {run.id} is {run.status} at attempt {run.attempt}: "
            f"attempt {attempt} cannot be claimed (cancelled meanwhile or already claimed)"
        )
    state_machine.transition(run, RunStatus.starting, f"claimed by {worker}", verb="claim")
    run.worker = worker[:200]
    run.worker_instance = instance
    run.last_seen_at = utcnow()
    return run


def adopt(run: Run, attempt: int, instance: str | None, job: str) -> Run:
    """A worker restarted under the same name takes back the attempt it still runs (a Slurm job
    that outlived it): the attempt must be the run's current one, still with a worker. The new
    instance now vouches for the run (``recovery.fail_lost_runs``)."""
    if run.attempt != attempt or run.status not in WORKER_STATUSES:
        raise Conflict(
            f"run {run.id} is {run.status} at attempt {run.attempt}: attempt {attempt} is "
            f"superseded; cancel Slurm job {job}"
        )
    run.worker_instance = instance
    run.last_seen_at = utcnow()
    return run


def events_seq(session: Session, run_id: str) -> int | None:
    """The highest event seq stored for the run (None: none yet). Seqs grow across attempts
    in the run's one events.jsonl, so every line up to it is stored, whatever its attempt."""
    rows = query(session.connection(), _MAX_SEQ_SQL, (run_id,))
    return int(rows[0][0]) if rows and rows[0][0] is not None else None


_MAX_SEQ_SQL = "SELECT MAX(seq) FROM run_events WHERE run_id = %s"


_DEFAULT_REASONS = {
    RunStatus.failed: "the training process failed: see the log",
    RunStatus.cancelled: "cancelled",
    RunStatus.succeeded: "finished",
}


def check_attempt(run: Run, attempt: int) -> None:
    if attempt != run.attempt:
        raise Conflict(f"run {run.id} is at attempt {run.attempt}, not {attempt}: stop this one")


#: A repeated report (a keep-alive) is published this often at most: the page learns that the
#: worker still speaks well before it would show the silence (10 s).
WORD_PUBLISH_SECONDS = 5.0


def report_status(
    run: Run,
    attempt: int,
    status: RunStatus,
    reason: str | None,
    pid: int | None,
    kind: FailureKind | None = None,
    argv: list[str] | None = None,
    max_futile: int = DEFAULT_FUTILE_ATTEMPTS,
) -> bool:
    """Apply the worker's status report; returns whether the run changed (and so is published:
    a quiet run's keep-alive at most every ``WORD_PUBLISH_SECONDS``, so the page's "no word
    for N s" starts only when the worker really fell silent)."""
    check_attempt(run, attempt)
    now, previous = utcnow(), run.last_seen_at
    run.last_seen_at = now
    word_due = previous is None or state_machine.seconds_between(previous, now) >= (
        WORD_PUBLISH_SECONDS
    )
    if pid is not None:
        run.pid = pid
    argv_changed = argv is not None and (run.attempt_argv or {}).get(str(attempt)) != argv
    if argv_changed:
        # A new dict: the JSON column is stored only when the attribute is set again.
        run.attempt_argv = {**(run.attempt_argv or {}), str(attempt): list(argv or [])}
    if status == run.status:
        # A repeated report; with a new reason it updates what the run shows (a Slurm job
        # pending for "Resources", then running on its nodes).
        if reason and reason[:REASON_MAX] != run.status_reason and status not in TERMINAL_STATUSES:
            run.status_reason = reason[:REASON_MAX]
            run.updated_at = utcnow()
            return True
        return argv_changed or word_due
    if status == RunStatus.starting:
        return argv_changed  # only a reason update: the run already moved on
    if status == RunStatus.running and run.status == RunStatus.cancelling:
        return argv_changed  # still stopping; the answer says cancel_requested
    if status in TERMINAL_STATUSES:
        reason = reason or run.end_reason or _DEFAULT_REASONS[status]
        if run.stop_reason and status == RunStatus.cancelled:
            reason = run.stop_reason  # the server stopped it (early stopping): say why
        elif run.stop_reason:
            run.stop_reason = None  # it ended on its own before the stop reached it
        autoresume.end_attempt(run, status, reason, kind=kind, max_futile=max_futile)
        return True
    state_machine.transition(run, status, reason)
    return True


def cancel_requested(run: Run, attempt: int) -> bool:
    # A stale attempt (the run was resumed meanwhile) must stop too.
    return run.status == RunStatus.cancelling or attempt != run.attempt


def heartbeat(session: Session, payload: dict[str, Any]) -> list[str]:
    """Record a heartbeat; returns the ids of this worker's runs whose cancel was requested."""
    name = str(payload["name"])
    worker = session.get(Worker, name)
    if worker is None:
        worker = Worker(name=name)
        session.add(worker)
    keys = (
        "host",
        "queue",
        "concurrency",
        "cpu_only",
        "gpus",
        "current_runs",
        "executor",
        "volumes",
    )
    for key in (*keys, "instance"):
        if key in payload and payload[key] is not None:
            setattr(worker, key, payload[key])
    # The cluster report is replaced as a whole (None: not a Slurm worker).
    worker.cluster = payload.get("cluster")
    worker.last_heartbeat = utcnow()
    current = list(worker.current_runs or [])
    mine = (col(Run.worker) == name) | col(Run.id).in_(current)
    cancelling = session.exec(select(Run.id).where(Run.status == RunStatus.cancelling, mine))
    # A run this worker still executes although the database says nobody should (it was
    # marked lost meanwhile, or resumed as a new attempt): stop the orphan.
    orphans = session.exec(
        select(Run.id).where(
            col(Run.id).in_(current), col(Run.status).not_in([s.value for s in WORKER_STATUSES])
        )
    )
    return sorted(set(cancelling.all()) | set(orphans.all()))
