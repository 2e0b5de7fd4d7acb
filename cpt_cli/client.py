"""The CLI's HTTP client: API URL and token from settings (``CPT_API_URL``, ``CPT_API_TOKEN``
or the token file in the data dir)."""

from __future__ import annotations

from typing import Any

import httpx

from cpt_contract.settings import Settings


class CliError(Exception):
    """A failure to show the user as one line (exit code 1)."""


def api_token(settings: Settings) -> str:
    if settings.api_token and not settings.api_token.startswith("sha256:"):
        return settings.api_token
    path = settings.resolved_data_dir / ".api_token"
    if path.exists():
        return path.read_text().strip()
    # Never generate one here: a fresh token would not match the API's.
    raise CliError(f"no API token: set CPT_API_TOKEN or run where {path} exists")


def make_client(settings: Settings, timeout: float = 30.0) -> httpx.Client:
    return httpx.Client(
        base_url=settings.effective_api_url + "/api",
        headers={"Authorization": f"Bearer {api_token(settings)}"},
        timeout=timeout,
    )


def explain(response: httpx.Response) -> str:
    """A one-line message out of an error answer (422 lists every field with its path)."""
    try:
        detail: Any = response.json().get("detail")
    except ValueError:
        detail = response.text
    if isinstance(detail, list):
        parts = []
        for item in detail:
            loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
            parts.append(f"{loc}: {item.get('msg')}" if loc else str(item.get("msg")))
        detail = "; ".join(parts)
    return f"HTTP {response.status_code}: {detail}"


def checked(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise CliError(explain(response))
    return response.json() if response.content else None


def request(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    try:
        return checked(client.request(method, path, **kwargs))
    except httpx.TransportError as exc:
        raise CliError(f"cannot reach the API at {client.base_url}: {exc}") from exc
