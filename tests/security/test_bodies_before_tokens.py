"""A request without the right token is refused before its body is read beyond a few KiB.

Found: ``/api/internal/*`` read and parsed a body of up to 16 MiB before checking the token
(each no-token request of that size cost ~1.6 s of CPU and ~400 MB; four clients pushed
``/api/health`` to 2.6 s). Driven at the ASGI level on the real app, counting what it reads.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.security.conftest import TOKEN, WORKER_TOKEN

MB = 1024 * 1024
#: "A few KiB": what anyone may make the API read before its token is checked.
OPEN_BODY_LIMIT = 16 * 1024


def _call(app: Any, path: str, body_size: int, token: str | None, chunked: bool) -> tuple[int, int]:
    """POST a body of ``body_size`` bytes in 64 KiB messages; the status and the bytes the app
    took from the client before it answered."""
    piece = b" " * (64 * 1024)
    state = {"read": 0, "status": 0}
    headers = [(b"content-type", b"application/json")]
    headers.append(
        (b"transfer-encoding", b"chunked")
        if chunked
        else (b"content-length", str(body_size).encode())
    )
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("198.51.100.7", 5000),
        "server": ("testserver", 80),
    }

    async def receive() -> dict[str, Any]:
        left = body_size - state["read"]
        chunk = piece[: min(len(piece), left)]
        state["read"] += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": state["read"] < body_size}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and not state["status"]:
            state["status"] = message["status"]

    asyncio.run(app(scope, receive, send))
    return state["status"], state["read"]


@pytest.mark.parametrize("chunked", [False, True], ids=["sized", "chunked"])
@pytest.mark.parametrize(
    ("path", "right"),
    [("/api/internal/runs/r-x/events", WORKER_TOKEN), ("/api/runs", TOKEN)],
    ids=["internal", "user"],
)
def test_no_large_body_is_read_without_the_right_token(
    client: TestClient, path: str, right: str, chunked: bool
) -> None:
    app = client.app
    for token in (None, "wrong-token-0123456789", TOKEN if right == WORKER_TOKEN else WORKER_TOKEN):
        status, read = _call(
            app, path, 16 * MB - 1 if "internal" in path else MB - 1, token, chunked
        )
        assert status == 401, (token, status)
        assert read <= OPEN_BODY_LIMIT, f"{read} bytes read before the token was checked"
    # With the right token the body is read (and the route answers on its content).
    status, read = _call(app, path, 2 * MB if "internal" in path else 512 * 1024, right, chunked)
    assert read > OPEN_BODY_LIMIT and status in (404, 409, 413, 422), status


def test_small_bodies_still_reach_the_routes_token_check(client: TestClient) -> None:
    """Below the limit the route answers as before (401 with its message, rate limited)."""
    r = client.post(
        "/api/internal/runs/r-x/claim",
        content=json.dumps({"attempt": 1, "worker": "w"}),
        headers={"Authorization": "Bearer nope-0123456789"},
    )
    assert r.status_code == 401 and "worker token" in r.json()["detail"]
