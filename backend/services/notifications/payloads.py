"""What a notification says: the run's summary (made when the event happens, stored in the
outbox row) and the bodies each channel format sends."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from backend.models import Experiment, Run
from cpt_contract.settings import Settings

#: Metric keys a summary names when the run has them (last value), in this order.
SUMMARY_METRICS = ("loss", "eval_loss", "perplexity")
VERBS = {
    "succeeded": "succeeded",
    "failed": "failed",
    "stalled": "stalled",
    "cancelled": "was cancelled",
    "experiment_finished": "finished",
    "test": "test message",
}


def panel_url(settings: Settings) -> str:
    return (settings.public_url or settings.effective_api_url).rstrip("/")


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes (stored as UTC), a fresh assignment is aware.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _iso(value: datetime | None) -> str | None:
    value = _utc(value)
    return value.isoformat() if value is not None else None


def run_summary(settings: Settings, run: Run, event: str) -> dict[str, Any]:
    """The generic body: the event, the run's facts at that moment and a link to its page."""
    metrics = {
        key: (run.metrics_summary or {}).get(key, {}).get("last")
        for key in (run.metrics_summary or {})
        if key in SUMMARY_METRICS or key.endswith("_bits_per_char")
    }
    duration = run.attempts_seconds or None
    started, finished = _utc(run.started_at), _utc(run.finished_at)
    if started and finished:
        duration = (duration or 0) + (finished - started).total_seconds()
    link = f"{panel_url(settings)}/#/runs/{run.id}"
    name = run.name or run.id
    reason = f": {run.status_reason}" if run.status_reason and event != "succeeded" else ""
    return {
        "event": event,
        "text": f"Run {name} {VERBS.get(event, event)}{reason}"[:500],
        "link": link,
        "run": {
            "id": run.id,
            "name": run.name,
            "status": run.status,
            "status_reason": run.status_reason,
            "failure_kind": run.failure_kind,
            "method": run.method,
            "model": run.model,
            "queue": run.queue,
            "attempt": run.attempt,
            "step": run.step,
            "max_steps": run.max_steps,
            "tokens_seen": run.tokens_seen,
            "started_at": _iso(run.first_started_at or run.started_at),
            "finished_at": _iso(run.finished_at),
            "duration_seconds": round(duration, 1) if duration else None,
            "metrics": metrics,
        },
    }


def _lines(summary: dict[str, Any]) -> list[str]:
    run = summary.get("run") or {}
    lines = [str(summary.get("text", ""))]
    if run.get("step") is not None:
        of = f" of {run['max_steps']}" if run.get("max_steps") else ""
        lines.append(f"step {run['step']}{of}, attempt {run.get('attempt', 1)}")
    for key, value in (run.get("metrics") or {}).items():
        if isinstance(value, int | float):
            lines.append(f"{key}: {value:.4g}")
    if summary.get("link"):
        lines.append(str(summary["link"]))
    return lines


def webhook_body(fmt: str, summary: dict[str, Any]) -> dict[str, Any]:
    if fmt == "slack":
        return {"text": "\n".join(_lines(summary))}
    if fmt == "discord":
        return {"content": "\n".join(_lines(summary))[:2000], "username": "cpt-panel"}
    return summary


def email_message(sender: str, to: list[str], summary: dict[str, Any]) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"] = sender, ", ".join(to)
    msg["Subject"] = f"[cpt-panel] {summary.get('text', '')}"[:200].replace("\n", " ")
    msg.set_content("\n".join(_lines(summary)) + "\n")
    return msg


def test_summary(settings: Settings, channel_name: str) -> dict[str, Any]:
    return {
        "event": "test",
        "text": f"Test message from cpt-panel to {channel_name}",
        "link": panel_url(settings),
        "run": None,
    }


def experiment_summary(
    settings: Settings, exp: Experiment, status: str, counts: dict[str, int]
) -> dict[str, Any]:
    """An experiment whose runs have all ended (``finished``, or ``incomplete`` when some
    failed or were cancelled), with its runs counted by outcome."""
    name = exp.name or exp.id
    tally = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(counts.items()))
    return {
        "event": "experiment_finished",
        "text": f"Experiment {name} {status}: {sum(counts.values())} runs ({tally})"[:500],
        "link": f"{panel_url(settings)}/#/experiments/{exp.id}",
        "run": None,
        "experiment": {"id": exp.id, "name": exp.name, "status": status, "runs": counts},
    }
