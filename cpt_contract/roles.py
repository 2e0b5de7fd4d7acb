"""Who may do what: the roles, the sign-in cookies and the personal tokens' form, defined once
for the API, the CLI and (generated) the frontend.

- ``viewer`` reads everything; ``operator`` also launches, and changes (cancels, resumes,
  edits, deletes) its own runs and jobs; ``admin`` does everything, users and settings too.
- A route answers GET/HEAD to a viewer and every other method to an operator unless it says
  otherwise (``backend/core/permissions.py``): a route added without a thought is safe.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    viewer = "viewer"
    operator = "operator"
    admin = "admin"


#: Higher may do what lower may.
ROLE_RANK: dict[Role, int] = {Role.viewer: 0, Role.operator: 1, Role.admin: 2}

#: A user name: what people type at sign-in and read on runs and in the audit log.
USER_NAME_PATTERN = r"^[a-z][a-z0-9_.-]{1,31}$"
PASSWORD_MIN = 10
PASSWORD_MAX = 256

#: The browser's session (HttpOnly) and its CSRF token (readable by the page, which echoes it in
#: ``CSRF_HEADER`` on every write: a cross-site form can send the cookie but not the header).
SESSION_COOKIE = "cpt_session"
CSRF_COOKIE = "cpt_csrf"
CSRF_HEADER = "X-CSRF-Token"
SESSION_HOURS = 12

#: Personal API tokens start with this (the legacy single token never does).
TOKEN_PREFIX = "cpt_"
TOKEN_MAX_DAYS = 366
