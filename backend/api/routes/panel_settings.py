"""The panel's settings that users set in the browser (``/api/settings``): the Hub token and the
trackers' settings (``backend/services/trackers.py``).

The token is write-only: no answer carries it, only whether one is set, from where and what its
last check said (``backend/services/hub_token.py``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from backend.api.deps import Admin, SessionDep, SettingsDep, admin_role
from backend.api.routes.common import AUTH
from backend.core.db import write_session
from backend.services import audit, hub_token, trackers

# Settings are the admins' (reading them too: they say which token is in force).
router = APIRouter(tags=["settings"], dependencies=[Depends(admin_role)], responses=AUTH)


class HubTokenIn(BaseModel):
    #: Checked and stored encrypted; never answered (a 422 does not echo it either).
    token: str = Field(description="A Hub access token (hf_...); write-only")
    #: Optional: a repo the token must be able to read (checked, not stored as a rule).
    repo: str | None = Field(default=None, description="org/name to check access to")

    model_config = {"extra": "forbid"}


class HubCheckIn(BaseModel):
    repo: str | None = Field(default=None, description="org/name to check access to")

    model_config = {"extra": "forbid"}


@router.get("/settings/hub", response_model=hub_token.HubTokenState)
def hub_state(settings: SettingsDep, session: SessionDep) -> hub_token.HubTokenState:
    return hub_token.state(settings, session)


@router.put("/settings/hub/token", response_model=hub_token.HubTokenState)
def set_hub_token(me: Admin, body: HubTokenIn, settings: SettingsDep) -> hub_token.HubTokenState:
    """Check the token against the Hub endpoint, then store it encrypted (an invalid one: 422
    at ``token``, nothing stored)."""
    with write_session(settings) as session:
        answer = hub_token.save(settings, session, body.token, body.repo)
        audit.record(session, me, "settings.hub_token.set", "settings/hub", {"repo": body.repo})
        session.commit()
        return answer


@router.post("/settings/hub/check", response_model=hub_token.HubTokenState)
def check_hub_token(me: Admin, body: HubCheckIn, settings: SettingsDep) -> hub_token.HubTokenState:
    """Check the token in force again (and a repo's access); the result is kept with it."""
    with write_session(settings) as session:
        answer = hub_token.recheck(settings, session, body.repo)
        audit.record(session, me, "settings.hub_token.check", "settings/hub", {"repo": body.repo})
        session.commit()
        return answer


@router.delete("/settings/hub/token", response_model=hub_token.HubTokenState)
def delete_hub_token(me: Admin, settings: SettingsDep) -> hub_token.HubTokenState:
    """Forget the stored token (the API's CPT_HUB_TOKEN, if any, is then the one in force)."""
    with write_session(settings) as session:
        hub_token.delete(session)
        audit.record(session, me, "settings.hub_token.delete", "settings/hub")
        session.commit()
        return hub_token.state(settings, session)


class TrackerIn(BaseModel):
    #: Settings of the tracker (``cpt_contract/trackers.py``) to set ('' unsets one; those not
    #: named are kept); stored encrypted.
    values: dict[str, Any] = Field(default_factory=dict)

    model_config = {"extra": "forbid"}


@router.get("/settings/trackers", response_model=list[trackers.TrackerState])
def tracker_states(settings: SettingsDep, session: SessionDep) -> list[trackers.TrackerState]:
    """Which of each tracker's settings are set (keys never answered)."""
    return trackers.state(settings, session)


@router.put("/settings/trackers/{tracker}", response_model=list[trackers.TrackerState])
def set_tracker(
    me: Admin, tracker: str, body: TrackerIn, settings: SettingsDep
) -> list[trackers.TrackerState]:
    """Set some of a tracker's settings (the others kept)."""
    with write_session(settings) as session:
        trackers.save(settings, session, tracker, body.values)
        # The names of the settings only: their values may be keys.
        audit.record(
            session, me, "settings.tracker.set", f"settings/trackers/{tracker}",
            {"set": sorted(body.values)},
        )  # fmt: skip
        session.commit()
        return trackers.state(settings, session)


@router.delete("/settings/trackers/{tracker}", response_model=list[trackers.TrackerState])
def forget_tracker(me: Admin, tracker: str, settings: SettingsDep) -> list[trackers.TrackerState]:
    """Forget every setting of a tracker."""
    with write_session(settings) as session:
        trackers.forget(session, tracker)
        audit.record(session, me, "settings.tracker.delete", f"settings/trackers/{tracker}")
        session.commit()
        return trackers.state(settings, session)
