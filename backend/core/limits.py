"""Limits on what a request may carry, applied before anything parses it (pure ASGI).

- **Body size**: 1 MiB on the user's routes, 16 MiB on ``/api/internal`` (log batches). A
  declared ``Content-Length`` over the limit is answered 413 at once, without reading the body;
  a chunked body is read up to the limit and then refused. A 100 MB body used to be parsed for
  12 s, and a 5 MB one of 300k keys stalled ``/api/health`` for seconds.
- **Text the database cannot hold**: NUL characters and lone UTF-16 surrogates in a JSON body
  of a user route are a 422 that names the field (``loc``), instead of a 500 from the database,
  the filesystem (``embedded null byte``) or the UTF-8 encoder. The raw body is scanned for the
  escapes first, so ordinary bodies are never parsed twice. (Worker reports are exempt: a
  training's log may hold NUL bytes, which the ingest replaces.)
- **Query strings** with a NUL (``%00``) are a 422 too.
- **Who sends a large body**: a body over ``OPEN_BODY_LIMIT`` (4 KiB) is read only after the
  ``Authorization`` header carries the right token for the route (the worker token on
  ``/api/internal``, a person's token or session cookie elsewhere): a caller without it is
  answered 401 (or 429) at once. 16 MiB without a token cost ~1.6 s of CPU and ~400 MB before the route said 401.
"""

from __future__ import annotations

import json
import re
from http.cookies import CookieError, SimpleCookie
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.core.auth import Refusal, authenticator
from backend.core.security import bearer_token
from cpt_contract.roles import SESSION_COOKIE

USER_BODY_LIMIT = 1024 * 1024
#: What anyone may send before the token is checked (every config, claim and report is larger
#: only with many events or log bytes, which only a worker with its token sends).
OPEN_BODY_LIMIT = 4 * 1024
INTERNAL_BODY_LIMIT = 16 * 1024 * 1024
INTERNAL_PREFIX = "/api/internal/"
HEALTH = "/api/health"

# A NUL or a surrogate as a JSON escape (a raw NUL or raw surrogate bytes are invalid JSON or
# invalid UTF-8, which the JSON decoder already refuses).
_SUSPECT = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
_MAX_FOUND = 20


def body_limit(path: str) -> int:
    return INTERNAL_BODY_LIMIT if path.startswith(INTERNAL_PREFIX) else USER_BODY_LIMIT


def _problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (\\u0000): remove it"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return (
            "contains a lone UTF-16 surrogate (e.g. \\ud800 without its pair): send valid Unicode"
        )
    return None


def _walk(value: Any, loc: list[str | int], found: list[dict[str, Any]]) -> None:
    if len(found) >= _MAX_FOUND:
        return
    if isinstance(value, str):
        if problem := _problem(value):
            found.append({"loc": loc, "msg": problem, "type": "string_unstorable"})
    elif isinstance(value, dict):
        for key, item in value.items():
            if problem := _problem(key):
                safe = key.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\u0000")
                found.append(
                    {"loc": [*loc, safe], "msg": f"key {problem}", "type": "string_unstorable"}
                )
            else:
                _walk(item, [*loc, key], found)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, [*loc, i], found)


def unstorable_text(body: bytes) -> list[dict[str, Any]]:
    """FastAPI-shaped errors for each string of the JSON body holding a NUL or a lone surrogate
    (or for the body itself when it is not UTF-8)."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = f"the body is not UTF-8 (byte {exc.start}): send JSON text encoded as UTF-8"
        return [{"loc": ["body"], "msg": msg, "type": "json_invalid"}]
    if not _SUSPECT.search(body):
        return []
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return []  # not JSON: the route's own validation answers
    found: list[dict[str, Any]] = []
    _walk(doc, ["body"], found)
    return found


async def _answer(send: Send, status: int, detail: Any, headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"detail": detail}, ensure_ascii=True).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _too_large(limit: int) -> str:
    return (
        f"the request body is larger than {limit // (1024 * 1024)} MiB: send less "
        "(a run config is a few KiB)"
    )


def _session_cookie(headers: dict[bytes, bytes]) -> str | None:
    try:
        jar = SimpleCookie(headers.get(b"cookie", b"").decode("latin-1"))
    except CookieError:
        return None
    morsel = jar.get(SESSION_COOKIE)
    return morsel.value if morsel is not None else None


def _refusal(scope: Scope, headers: dict[bytes, bytes], path: str) -> Refusal | None:
    """The token check of ``backend/core/auth.py`` on the headers alone (None: it passed)."""
    app = scope.get("app")
    settings = getattr(getattr(app, "state", None), "settings", None)
    if app is None or settings is None:  # an app built without create_app: the routes check
        return None
    presented = bearer_token(headers.get(b"authorization", b"").decode("latin-1"))
    client = scope.get("client")
    address = client[0] if client else "unknown"
    auth = authenticator(app)
    try:
        if path.startswith(INTERNAL_PREFIX):
            auth.check_worker(settings, address, presented)
        else:
            cookie = _session_cookie(headers)
            auth.identify(settings, address, presented, cookie, "API token")
    except Refusal as refusal:
        return refusal
    return None


class RequestLimits:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        query: bytes = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query:
            detail = [
                {
                    "loc": ["query"],
                    "msg": "contains a NUL (%00): remove it",
                    "type": "string_unstorable",
                }
            ]
            await _answer(send, 422, detail, [])
            return
        limit = body_limit(path)
        close = [(b"connection", b"close")]
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or len(declared) > 18:
                await _answer(send, 400, "Content-Length is not a number", close)
                return
            if int(declared) > limit:
                await _answer(send, 413, _too_large(limit), close)
                return
        large = (
            int(declared) > OPEN_BODY_LIMIT
            if declared is not None
            else b"transfer-encoding" in headers  # chunked: of unknown size
        )
        # A large body: the token first, before a byte of it is read.
        if (
            large
            and path != HEALTH
            and (
                refusal := _refusal(scope, headers, path)
                if path.startswith(INTERNAL_PREFIX)
                # a thread: a person's token or session is looked up in the database
                else await anyio.to_thread.run_sync(_refusal, scope, headers, path)
            )
        ):
            extra = [(k.lower().encode(), v.encode()) for k, v in refusal.headers.items()]
            await _answer(send, refusal.status, refusal.detail, [*extra, *close])
            return
        # Read the whole body (at most ``limit`` bytes) before the app sees any of it.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _answer(send, 413, _too_large(limit), close)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and not path.startswith(INTERNAL_PREFIX) and (found := unstorable_text(body)):
            await _answer(send, 422, found, [])
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # then only the disconnect

        await self.app(scope, replay, send)
