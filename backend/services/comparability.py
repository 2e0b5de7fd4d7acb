"""Whether runs scored the same text on a held-out set (bits/char compare only then).

The rule is Compare's (``frontend/src/lib/evalsets.ts::textDifference``), word for word: every
run reported the set in its ``start`` event, with exact counts (not packed blocks of its own
tokens), the same characters and documents, and the same ``text_sha256``. The verdict uses it
here so its warnings come with the numbers from the server.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session

from backend.models import RunEvent

SetInfo = dict[str, Any]


def start_event(session: Session, run_id: str) -> dict[str, Any]:
    """The data of the run's latest ``start`` event (its latest attempt's), or {}."""
    t = RunEvent.__table__.c  # type: ignore[attr-defined]
    row = (
        session.connection()
        .execute(
            sa_select(t.data)
            .where(t.run_id == run_id, t.kind == "start")
            .order_by(t.attempt.desc(), t.seq.desc())
            .limit(1)
        )
        .first()
    )
    return dict(row[0]) if row else {}


def set_infos(session: Session, run_id: str) -> dict[str, SetInfo]:
    """The run's eval sets as its latest ``start`` event describes them, by name."""
    sets = start_event(session, run_id).get("eval_sets") or []
    return {str(s.get("name")): s for s in sets if isinstance(s, dict)}


def scored_text(info: SetInfo | None) -> str:
    """ "1,304 characters in 3 documents" (the text a set's numbers are over)."""
    if not info:
        return "not reported"
    approx = "≈" if info.get("exact") is False else ""
    return f"{approx}{int(info.get('characters') or 0):,} characters in {int(info.get('documents') or 0):,} documents"


def signature(info: SetInfo | None) -> tuple[Any, ...] | None:
    """What must be equal for two runs' figures on a set to compare; None: never comparable."""
    if not info or info.get("exact") is False or not info.get("text_sha256"):
        return None
    return (info.get("characters"), info.get("documents"), info.get("text_sha256"))


def text_difference(name: str, runs: list[tuple[str, SetInfo | None]]) -> str | None:
    """Why the runs' figures for one set are not over the same text, or None when they are."""
    if len(runs) < 2:
        return None
    each = "; ".join(f"{label}: {scored_text(info)}" for label, info in runs)
    if any(info is None for _, info in runs):
        return f"{name}: not every run reported the text it scored ({each})"
    infos = [info for _, info in runs if info is not None]
    if any(i.get("exact") is False for i in infos):
        return f"{name}: scored over packed blocks of each run's own tokens, so not the same text ({each})"
    if len({(i.get("characters"), i.get("documents")) for i in infos}) > 1:
        return f"{name}: the runs scored different text ({each})"
    digests = {i.get("text_sha256") or "" for i in infos}
    if len(digests) > 1 or "" in digests:
        return (
            f"{name}: the same number of characters but not provably the same text "
            f"({each}; the digests differ)"
        )
    return None
