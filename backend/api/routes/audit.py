"""The audit log (``/api/audit``, admins only): read with filters, or export as JSON Lines.
Nothing here (or anywhere) edits or deletes a row."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from backend.api.deps import SessionDep, admin_role
from backend.api.routes.common import AUTH, attachment
from backend.models import UtcDatetime
from backend.services import audit
from cpt_contract.limits import INT32

router = APIRouter(tags=["audit"], dependencies=[Depends(admin_role)], responses=AUTH)


class AuditRow(BaseModel):
    id: int
    at: UtcDatetime
    actor: str
    via: str
    client: str
    action: str
    target: str
    changes: dict[str, Any]


class Filters(BaseModel):
    user: str | None = None
    action: str | None = None
    target: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _filters(
    user: Annotated[
        str | None, Query(max_length=64, description="Who (a user name, worker)")
    ] = None,
    action: Annotated[
        str | None, Query(max_length=48, description="An action or its prefix (run.)")
    ] = None,
    target: Annotated[
        str | None, Query(max_length=200, description="run/r-1a2b3c (and what is under it)")
    ] = None,
    since: Annotated[datetime | None, Query(description="From this time (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="Before this time (ISO 8601)")] = None,
) -> Filters:
    return Filters(user=user, action=action, target=target, since=since, until=until)


FiltersDep = Annotated[Filters, Depends(_filters)]


@router.get("/audit", response_model=list[AuditRow])
def list_audit(
    session: SessionDep,
    filters: FiltersDep,
    before_id: Annotated[
        int | None, Query(ge=1, le=INT32, description="Older than this row")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AuditRow]:
    """Newest first; page with ``before_id`` (the last row's id)."""
    rows = audit.query(
        session,
        actor=filters.user,
        action=filters.action,
        target=filters.target,
        since=filters.since,
        until=filters.until,
        before_id=before_id,
        limit=limit,
    )
    return [AuditRow.model_validate(audit.as_dict(r)) for r in rows]


@router.get(
    "/audit/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}, "description": "JSON Lines"}},
)
def export_audit(session: SessionDep, filters: FiltersDep) -> StreamingResponse:
    """Every matching row, one JSON object a line, newest first."""
    rows = audit.query(
        session,
        actor=filters.user,
        action=filters.action,
        target=filters.target,
        since=filters.since,
        until=filters.until,
        limit=None,
    )
    return StreamingResponse(
        audit.json_lines(rows),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": attachment("audit.jsonl")},
    )
