"""What role a route needs, decided in one place.

A route says it by naming one of the role dependencies of ``backend/api/deps.py`` (``Viewer``,
``Operator``, ``Admin``) among its parameters or its router's dependencies. A route that says
nothing gets the safe default: GET and HEAD need a viewer, every other method an operator. So a
route added later without a thought can neither be written to by a viewer nor skip the check.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException

from cpt_contract.roles import ROLE_RANK, Role

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Filled by backend/api/deps.py: each role dependency and the role it declares.
MARKERS: dict[Callable[..., Any], Role] = {}


def _declared(dependant: Any) -> Role | None:
    found: Role | None = None
    for sub in getattr(dependant, "dependencies", []):
        for role in (MARKERS.get(sub.call), _declared(sub)):
            if role is not None and (found is None or ROLE_RANK[role] > ROLE_RANK[found]):
                found = role
    return found


def declared_role(route: Any) -> Role | None:
    """The highest role a route names (cached on the route: routes live as long as the app)."""
    if hasattr(route, "_cpt_declared_role"):
        cached: Role | None = route._cpt_declared_role
        return cached
    found = _declared(getattr(route, "dependant", None))
    with contextlib.suppress(AttributeError):
        route._cpt_declared_role = found
    return found


def required_role(route: Any, method: str) -> Role:
    declared = declared_role(route) if route is not None else None
    if declared is not None:
        return declared
    return Role.viewer if method.upper() in _SAFE_METHODS else Role.operator


def may(role: Role, needed: Role) -> bool:
    return ROLE_RANK[role] >= ROLE_RANK[needed]


def forbid_unless(role: Role, needed: Role, who: str) -> None:
    if not may(role, needed):
        raise HTTPException(
            403,
            f"this needs the {needed} role; {who} is a {role}: ask an admin for the role, "
            "or for it to be done",
        )


def ensure_owner(principal: Any, owner: str | None, what: str) -> None:
    """An operator changes only its own runs and jobs (an admin any): 403 naming the owner."""
    if principal.role == Role.admin or owner == principal.name:
        return
    if principal.role == Role.operator:
        raise HTTPException(
            403,
            f"{what} belongs to {owner or 'nobody'}: an operator may change only their own; "
            f"ask {owner or 'its owner'} (or an admin)",
        )
    forbid_unless(principal.role, Role.operator, principal.name)
