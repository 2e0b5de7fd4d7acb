"""Experiments: presets, create (validated, nothing queued), list, show, launch, cancel,
resume, the verdict and its exports. Thin: ``backend/services/experiments/`` decides."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel
from sqlmodel import col, select

from backend.api.deps import CurrentUser, SessionDep, SettingsDep, Viewer, require_api_token
from backend.api.routes.common import AUTH, CONFLICT, NOT_FOUND, OVER_QUOTA, attachment
from backend.api.routes.verdict_models import Verdict
from backend.core.db import write_session
from backend.core.permissions import ensure_owner
from backend.models import Experiment, Run, RunPublic
from backend.services import audit, enqueue, runs, users
from backend.services.experiments import export, grid, lifecycle
from backend.services.experiments.verdict import verdict
from backend.services.notify import publish_run
from backend.services.validation import ConfigInvalid, error
from cpt_contract.experiments import EXPERIMENT_PRESETS, ExperimentSpec, experiment_preset

router = APIRouter(tags=["experiments"], dependencies=[Depends(require_api_token)], responses=AUTH)


class ExperimentPreset(BaseModel):
    name: str
    label: str
    spec: dict[str, Any]


class ChildPreview(BaseModel):
    values: dict[str, Any]
    config: dict[str, Any]


class ExperimentPreview(BaseModel):
    runs: list[ChildPreview]


class ExperimentPublic(BaseModel):
    id: str
    name: str
    spec: dict[str, Any]
    #: draft | running | finished | incomplete (from its runs).
    status: str
    created_at: datetime
    launched_at: datetime | None = None
    #: Planned runs (a draft) or the runs it has.
    run_count: int
    #: Runs by status (``stopped_early`` apart from other cancelled runs).
    counts: dict[str, int] = {}
    runs: list[RunPublic] = []
    #: Who made it: an operator launches, cancels, resumes and deletes only its own.
    owner: str | None = None


class ExperimentList(BaseModel):
    items: list[ExperimentPublic]


def _public(
    exp: Experiment, members: list[Run], planned: int | None = None, with_runs: bool = True
) -> ExperimentPublic:
    return ExperimentPublic(
        id=exp.id,
        name=exp.name,
        spec=exp.spec,
        status=lifecycle.status(exp, members),
        created_at=exp.created_at,
        launched_at=exp.launched_at,
        run_count=len(members)
        if exp.launched_at
        else (planned or len(grid.combinations(lifecycle.spec_of(exp)))),
        counts=lifecycle.counts(members),
        runs=[runs.to_public(r) for r in members] if with_runs else [],
        owner=exp.owner,
    )


@router.get("/experiments/presets", response_model=list[ExperimentPreset])
def list_presets(settings: SettingsDep) -> list[ExperimentPreset]:
    return [
        ExperimentPreset(name=n, label=label, spec=experiment_preset(n, settings.demo_dir))
        for n, label in EXPERIMENT_PRESETS.items()
    ]


def _spec(settings: SettingsDep, body: ExperimentSpec, preset: str | None) -> ExperimentSpec:
    """The body, over an experiment preset when one is named (its fields deep-merged)."""
    if preset is None:
        return body
    try:
        base = experiment_preset(preset, settings.demo_dir)
    except KeyError:
        known = ", ".join(EXPERIMENT_PRESETS)
        raise ConfigInvalid(
            [error(["query", "preset"], f"unknown experiment preset {preset!r}: use {known}")]
        ) from None
    given = body.model_dump(exclude_unset=True)
    return ExperimentSpec.model_validate({**base, **given})


PresetQuery = Annotated[
    str | None, Query(max_length=64, description="Start from an experiment preset (seed-2x2)")
]


@router.post("/experiments/preview", response_model=ExperimentPreview)
def preview(
    _me: Viewer,
    body: ExperimentSpec,
    settings: SettingsDep,
    session: SessionDep,
    preset: PresetQuery = None,
) -> ExperimentPreview:
    """Every run the experiment would queue, each config validated like ``POST /runs``."""
    children = grid.expand(settings, session, _spec(settings, body, preset))
    return ExperimentPreview(
        runs=[
            ChildPreview(values=c.values, config=c.config.model_dump(mode="json")) for c in children
        ]
    )


@router.post(
    "/experiments",
    response_model=ExperimentPublic,
    status_code=status.HTTP_201_CREATED,
    responses=OVER_QUOTA,
)
def create(
    me: CurrentUser,
    body: ExperimentSpec,
    settings: SettingsDep,
    preset: PresetQuery = None,
    launch: Annotated[bool, Query(description="Queue its runs at once")] = False,
) -> ExperimentPublic:
    spec = _spec(settings, body, preset)
    with write_session(settings) as session:
        exp, planned = lifecycle.create(settings, session, spec)
        exp.owner = me.name
        audit.record(session, me, "experiment.create", f"experiment/{exp.id}", {"name": exp.name})
        made = _launch(session, settings, me, exp) if launch else []
        session.commit()
    _send(settings, made)
    return _public(exp, made, planned)


def _launch(session: Any, settings: Any, me: CurrentUser, exp: Experiment) -> list[Run]:
    """Its runs, the launcher's (within the launcher's quota), recorded."""
    made = lifecycle.launch(settings, session, exp)
    users.check_quota(session, me.name, adding=len(made))
    for run in made:
        run.owner = me.name
    audit.record(
        session, me, "experiment.launch", f"experiment/{exp.id}", {"runs": [r.id for r in made]}
    )
    return made


def _send(settings: Any, made: list[Run]) -> None:
    for run in made:
        enqueue.enqueue_run(settings, run.id, run.attempt, run.queue)
        publish_run(run)


@router.get("/experiments", response_model=ExperimentList)
def list_experiments(
    session: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> ExperimentList:
    exps = session.exec(
        select(Experiment).order_by(col(Experiment.created_at).desc()).limit(limit)
    ).all()
    return ExperimentList(
        items=[_public(e, lifecycle.runs_of(session, e.id), with_runs=False) for e in exps]
    )


@router.get("/experiments/{exp_id}", response_model=ExperimentPublic, responses=NOT_FOUND)
def get_experiment(exp_id: str, session: SessionDep) -> ExperimentPublic:
    exp = lifecycle.get(session, exp_id)
    return _public(exp, lifecycle.runs_of(session, exp.id))


@router.post(
    "/experiments/{exp_id}/launch",
    response_model=ExperimentPublic,
    responses={**NOT_FOUND, **CONFLICT},
)
def launch_experiment(me: CurrentUser, exp_id: str, settings: SettingsDep) -> ExperimentPublic:
    with write_session(settings) as session:
        exp = lifecycle.get(session, exp_id, for_update=True)
        ensure_owner(me, exp.owner, f"experiment {exp_id}")
        made = _launch(session, settings, me, exp)
        session.commit()
    _send(settings, made)
    return _public(exp, made)


@router.post(
    "/experiments/{exp_id}/cancel",
    response_model=ExperimentPublic,
    responses={**NOT_FOUND, **CONFLICT},
)
def cancel_experiment(me: CurrentUser, exp_id: str, settings: SettingsDep) -> ExperimentPublic:
    with write_session(settings) as session:
        exp = lifecycle.get(session, exp_id, for_update=True)
        ensure_owner(me, exp.owner, f"experiment {exp_id}")
        changed = lifecycle.cancel(session, exp)
        audit.record(
            session,
            me,
            "experiment.cancel",
            f"experiment/{exp_id}",
            {"runs": [r.id for r in changed]},
        )
        session.commit()
        members = lifecycle.runs_of(session, exp.id)
        answer = _public(exp, members)
    for run in changed:
        publish_run(run)
    return answer


@router.post(
    "/experiments/{exp_id}/resume",
    response_model=ExperimentPublic,
    responses={**NOT_FOUND, **CONFLICT},
)
def resume_experiment(me: CurrentUser, exp_id: str, settings: SettingsDep) -> ExperimentPublic:
    """Queue again what did not finish (failed, or cancelled other than by early stopping)."""
    with write_session(settings) as session:
        exp = lifecycle.get(session, exp_id, for_update=True)
        ensure_owner(me, exp.owner, f"experiment {exp_id}")
        resumed = lifecycle.resume(session, exp)
        audit.record(
            session,
            me,
            "experiment.resume",
            f"experiment/{exp_id}",
            {"runs": [r.id for r in resumed]},
        )
        session.commit()
        members = lifecycle.runs_of(session, exp.id)
        answer = _public(exp, members)
    _send(settings, resumed)
    return answer


@router.delete(
    "/experiments/{exp_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={**NOT_FOUND, **CONFLICT},
)
def delete_experiment(me: CurrentUser, exp_id: str, settings: SettingsDep) -> Response:
    """Delete a draft, or an experiment whose runs all ended (the runs stay, unlinked)."""
    with write_session(settings) as session:
        exp = lifecycle.get(session, exp_id, for_update=True)
        ensure_owner(me, exp.owner, f"experiment {exp_id}")
        lifecycle.delete(session, exp)
        audit.record(session, me, "experiment.delete", f"experiment/{exp_id}", {"name": exp.name})
        session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/experiments/{exp_id}/verdict", response_model=Verdict, responses=NOT_FOUND)
def get_verdict(exp_id: str, session: SessionDep) -> dict[str, Any]:
    """One row per run, the winner under the forgetting cap, Pareto front, rungs, samples."""
    return verdict(session, lifecycle.get(session, exp_id))


_FORMATS = {
    "md": ("text/markdown; charset=utf-8", export.to_markdown),
    "csv": ("text/csv; charset=utf-8", export.to_csv),
    "json": ("application/json", export.to_json),
}


@router.get(
    "/experiments/{exp_id}/verdict/export",
    response_class=Response,
    responses={**NOT_FOUND, 200: {"content": {"text/markdown": {}, "text/csv": {}}}},
)
def export_verdict(
    exp_id: str, session: SessionDep, format: Literal["md", "csv", "json"] = "md"
) -> Response:
    exp = lifecycle.get(session, exp_id)
    media, render = _FORMATS[format]
    return Response(
        render(verdict(session, exp)),
        media_type=media,
        headers={"Content-Disposition": attachment(f"verdict-{exp.id}.{format}")},
    )
