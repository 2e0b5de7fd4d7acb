"""The trackers' settings (``cpt_contract/trackers.py``): kept as one encrypted secret per
tracker (``tracker.<name>``, a JSON object), answered only as which settings are set (and the
plain ones' values), and turned into a run's environment at its claim."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session

from backend.services import secrets
from backend.services.validation import ConfigInvalid, error
from cpt_contract.settings import Settings
from cpt_contract.trackers import (
    PLAIN_SETTINGS,
    RUN_NAME_ENV,
    TRACKER_ENV,
    TRACKERS,
    WANDB_MODES,
)

MAX_VALUE = 2000


class TrackerState(BaseModel):
    tracker: str
    #: Every setting this tracker has, and whether it is set.
    set: dict[str, bool]
    #: The values of the settings that are not keys (project, entity, mode...).
    plain: dict[str, str]
    readable: bool = True


def _name(tracker: str) -> str:
    return f"tracker.{tracker}"


def _stored(settings: Settings, session: Session, tracker: str) -> dict[str, str]:
    text = secrets.get(settings, session, _name(tracker))
    return dict(json.loads(text)) if text else {}


def validate(tracker: str, values: dict[str, Any]) -> dict[str, str]:
    if tracker not in TRACKERS:
        raise ConfigInvalid([error(["path", "tracker"], f"one of {', '.join(TRACKERS)}")])
    fields = TRACKER_ENV[tracker]
    errors = []
    out: dict[str, str] = {}
    for key, value in values.items():
        loc: list[str | int] = ["body", "values", key]
        if key not in fields:
            known = ", ".join(fields) or "none"
            errors.append(error(loc, f"{tracker} has no setting {key!r} (it has: {known})"))
        elif not isinstance(value, str) or len(value) > MAX_VALUE or "\x00" in value:
            errors.append(error(loc, f"a text of at most {MAX_VALUE} characters ('': unset it)"))
        elif key == "mode" and value and value not in WANDB_MODES:
            errors.append(error(loc, f"one of {', '.join(WANDB_MODES)}"))
        else:
            out[key] = value
    if errors:
        raise ConfigInvalid(errors)
    return out


def save(settings: Settings, session: Session, tracker: str, values: dict[str, Any]) -> None:
    """Set the given settings of a tracker (an empty value unsets one; the others are kept, so
    a key need not be typed again to change a project)."""
    clean = validate(tracker, values)
    try:
        stored = _stored(settings, session, tracker)
    except secrets.SecretUnreadable:
        stored = {}  # sealed under another key: what is given now replaces it
    merged = {k: v for k, v in {**stored, **clean}.items() if v}
    if merged:
        secrets.put(settings, session, _name(tracker), json.dumps(merged))
    else:
        secrets.delete(session, _name(tracker))


def forget(session: Session, tracker: str) -> None:
    validate(tracker, {})
    secrets.delete(session, _name(tracker))


def state(settings: Settings, session: Session) -> list[TrackerState]:
    out = []
    for tracker in TRACKERS:
        try:
            stored, readable = _stored(settings, session, tracker), True
        except secrets.SecretUnreadable:
            stored, readable = {}, False
        out.append(
            TrackerState(
                tracker=tracker,
                set={k: k in stored for k in TRACKER_ENV[tracker]},
                plain={k: stored[k] for k in PLAIN_SETTINGS[tracker] if k in stored},
                readable=readable,
            )
        )
    return out


def env_for(
    settings: Settings, session: Session, report_to: list[str], run_id: str | None = None
) -> dict[str, str]:
    """The environment of a run's ranks for the trackers it reports to (unreadable settings:
    left out; the tracker then fails or logs locally, as it would unconfigured), and the run's
    name in them (``RUN_NAME_ENV``)."""
    env: dict[str, str] = {}
    if report_to and run_id:
        env[RUN_NAME_ENV] = run_id
    for tracker in report_to:
        try:
            stored = _stored(settings, session, tracker)
        except secrets.SecretUnreadable:
            continue
        for key, value in stored.items():
            env[TRACKER_ENV[tracker][key]] = value
        if tracker == "mlflow":  # it prints the tracking URI (which may hold a password)
            env["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    return env
