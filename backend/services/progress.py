"""A run's measured speed and its ETA, from the training's own timings.

Tokens/s and seconds per step are means over the attempt's last ``ETA_WINDOW`` log intervals of
*training* seconds (the script leaves evaluations and saves out), so neither spikes after a
resume or an evaluation; neither is shown before the window holds ``MIN_SPEED_SECONDS`` of
training. The ETA adds, to the remaining steps at that pace, each evaluation and checkpoint
still to come at its measured duration (and what is left of the one under way). The decisions
are pure functions (``speed``, ``pauses_left``, ``eta``); ``update_eta`` reads the window and
writes the run (ingest calls it once per batch).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlmodel import Session

from backend.core.dbapi import query
from backend.models import Run, utcnow
from backend.services import state_machine
from cpt_contract.statuses import TERMINAL_STATUSES

#: Log events of the attempt in the speed window (tokens/s and seconds per step): a mean over
#: this many intervals moves smoothly instead of jumping with each step.
ETA_WINDOW = 20
#: How far below a batch's newest event the speed window is looked for first (see _recent_logs).
RECENT_SEQS = 50 * ETA_WINDOW
#: Training seconds the window must hold before a speed is shown (unless it is full): one short
#: interval right after a resume or a start is mostly timer noise on a busy box (a 2-step
#: interval read 2.2x the run's median), so until then the speed is "not measured yet".
MIN_SPEED_SECONDS = 2.0
#: Weight of the newest measurement in the running mean of eval and save seconds.
PAUSE_WEIGHT = 0.5


def _loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # e.g. an integer beyond 64 bits, which json reads
        return json.loads(text)


def running_mean(old: float | None, new: float) -> float:
    """The running mean of an evaluation's or a save's seconds (newest weighted ``PAUSE_WEIGHT``)."""
    return new if old is None else PAUSE_WEIGHT * new + (1 - PAUSE_WEIGHT) * old


def _num(value: Any) -> float | None:
    """A finite number of an event's data, else None (a bool is no number here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class Speed:
    """Seconds per step (None: not measured yet), and whether it came from timed intervals."""

    per_step: float | None
    timed: bool
    #: Timed intervals exist but hold too little training yet: show no speed and no ETA.
    too_few: bool = False


def speed(recent: Sequence[tuple[Any, Any, dict[str, Any]]], ended: bool) -> Speed:
    """From (step, time, data) of the window's log events, newest first."""
    steps = seconds = 0.0
    for _, _, data in recent:
        n, t = _num(data.get("interval_steps")), _num(data.get("train_seconds"))
        if n and t and n > 0 and t > 0:
            steps, seconds = steps + n, seconds + t
    timed = steps > 0 and (seconds >= MIN_SPEED_SECONDS or len(recent) >= ETA_WINDOW or ended)
    if timed:
        return Speed(seconds / steps, True)
    if steps:
        return Speed(None, False, too_few=True)
    # Events from a script that does not time its intervals: wall clock between logs.
    points = [(s, t) for s, t, _ in recent if s is not None and t is not None]
    if len(points) >= 2 and points[0][0] > points[-1][0] and points[0][1] > points[-1][1]:
        (s1, t1), (s0, t0) = points[0], points[-1]
        return Speed((t1 - t0) / (s1 - s0), False)
    return Speed(None, False)


def pauses_left(
    training: dict[str, Any],
    step: int,
    max_steps: int,
    eval_seconds: float | None,
    save_seconds: float | None,
    phase: str | None,
    phase_since: datetime | None,
    now: datetime,
) -> float:
    """Measured seconds of the evaluations and saves still to come (incl. the final ones)."""
    total = 0.0
    for every, seconds, kind in (
        (training.get("eval_steps"), eval_seconds, "evaluating"),
        (training.get("save_steps"), save_seconds, "saving"),
    ):
        if not seconds:
            continue
        count = 1  # the final evaluation / the final save of the weights
        if isinstance(every, int) and every > 0:
            count = max_steps // every - step // every
            # pretrain.py saves the weights at the end, and evaluates unless it just did.
            count += 1 if kind == "saving" or max_steps % every else 0
        if phase == kind and phase_since is not None:
            # One is under way: what is left of it, not a whole one more.
            total += max(0.0, seconds - state_machine.seconds_between(phase_since, now))
        total += count * seconds
    return total


def update_eta(session: Session, run: Run, newest_seq: int) -> None:
    """The run's tokens/s and ETA after a batch whose newest event is ``newest_seq``."""
    # An ended attempt's window is all the measuring there will be: its speed is shown whatever
    # its length (a run shorter than MIN_SPEED_SECONDS still has a tokens/s to compare).
    ended = run.end_status is not None or run.status in TERMINAL_STATUSES
    if not run.max_steps or run.step is None or (ended and not run.tokens_per_step):
        run.eta_seconds = None
        return
    measured = speed(_recent_logs(session, run, newest_seq), ended)
    if measured.too_few:
        # Timed intervals, but too few yet: no speed and no ETA rather than a noisy one (the
        # log's own one-interval tokens/s stays in its chart, not in the run's figure).
        run.tokens_per_second, run.eta_seconds, run.eta_at = None, None, None
        return
    per_step = measured.per_step
    if measured.timed and per_step and run.tokens_per_step:
        run.tokens_per_second = run.tokens_per_step / per_step
    if ended:
        run.eta_seconds, run.eta_at = None, None
        return
    if per_step is None and run.tokens_per_second and run.tokens_per_step:
        per_step = run.tokens_per_step / run.tokens_per_second
    if per_step is None:
        run.eta_seconds, run.eta_at = None, None
        return
    now = utcnow()
    training = run.config.get("training", {}) if isinstance(run.config, dict) else {}
    pauses = pauses_left(
        training, run.step or 0, run.max_steps or 0, run.eval_seconds, run.save_seconds,
        run.phase, run.phase_since, now,
    )  # fmt: skip
    run.eta_seconds = max(0, run.max_steps - run.step) * per_step + pauses
    run.eta_at = now


def _recent_logs(
    session: Session, run: Run, newest_seq: int
) -> list[tuple[Any, Any, dict[str, Any]]]:
    """(step, time, data) of the attempt's last ``ETA_WINDOW`` log events, newest first (a
    DB-API read: once per batch, the ORM's statement and row building cost more than it).

    Looked for among the ``RECENT_SEQS`` events up to the batch's newest first: PostgreSQL's
    planner, before its statistics caught up with a table growing this fast, read every event
    of the run and sorted them (54 ms a batch at 100 k events, and growing with the run)."""
    sql = (
        "SELECT step, time, data FROM run_events WHERE run_id = %s AND attempt = %s "
        "AND kind = 'log'{} ORDER BY seq DESC LIMIT %s"
    )
    conn, rows = session.connection(), []
    low = newest_seq - RECENT_SEQS
    if low > 0:
        bounded = sql.format(" AND seq > %s AND seq <= %s")
        rows = query(conn, bounded, (run.id, run.attempt, low, newest_seq, ETA_WINDOW))
    if len(rows) < ETA_WINDOW:  # a young run, or logs sparse among other events
        rows = query(conn, sql.format(""), (run.id, run.attempt, ETA_WINDOW))
    # SQLite hands back the JSON text, PostgreSQL the decoded value.
    return [(s, t, _loads(d) if isinstance(d, str | bytes) else d) for s, t, d in rows]
