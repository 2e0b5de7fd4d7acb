"""What the panel says about the Hub token set for it (the Settings page reads these)."""

from __future__ import annotations

from enum import StrEnum

#: The public Hub, when ``CPT_HUB_ENDPOINT`` names no mirror.
DEFAULT_HUB_ENDPOINT = "https://huggingface.co"


class HubCheckResult(StrEnum):
    """A check of the Hub token against the endpoint (``whoami``, then an optional repo)."""

    valid = "valid"  # the endpoint named the token's user (and the repo, if one, answered)
    invalid = "invalid"  # the endpoint refused the token (401): never stored
    no_access = "no_access"  # a valid token that may not read the named repo (gated, private)
    unchecked = "unchecked"  # the endpoint could not say (unreachable, a mirror without whoami)


class HubTokenSource(StrEnum):
    panel = "panel"  # set in Settings, stored encrypted in the database
    env = "env"  # CPT_HUB_TOKEN of the API's environment (.env)
