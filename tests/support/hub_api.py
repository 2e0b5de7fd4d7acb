"""A small local endpoint for the Hub's *account* side, which no server from the registries
provides offline: olah (``tests/support/hub.py``) is a read-only mirror that answers no
``whoami`` and checks no token. This one knows accounts by token and what each may read, and
answers the routes the Hub answers for them, in the Hub's shapes:

- ``GET /api/whoami-v2``: 200 ``{"name": ..., "type": "user"}`` for a known token, else 401;
- ``GET /api/models/{org}/{name}``: 200 when the token's account may read it; 401 without a
  known token, 403 for a gated repo the account has not accepted, 404 for a repo it does not
  hold;
- publishing, which olah (read-only) cannot take: ``POST /api/repos/create``,
  ``.../preupload/{rev}`` (every file "regular": sent inline) and ``.../commit/{rev}`` (the
  Hub's NDJSON commit). It *records* what ``huggingface_hub``'s real upload client sends
  (``published``: repo → its create request and its files' bytes; ``validate-yaml`` requests
  in ``validated``) and answers in the Hub's
  shapes; it is no Hub (no git, no LFS, no revisions).

Every request is recorded (method, path, the presented token) so a test can assert what a real
client sent. It runs in a thread of the test process (uvicorn on a free port).
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.panel import ASSET_CACHE, Panel, free_port, start_panel


@dataclass
class HubAccounts:
    """Tokens → account names; repos → who may read them (``gated``: only ``readers``)."""

    users: dict[str, str] = field(default_factory=dict)
    repos: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    #: repo id -> {"create": the create request's JSON, "files": {path: bytes}, "commits": n}.
    published: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: README.md texts the client asked to validate (the Hub checks a card's YAML header).
    validated: list[str] = field(default_factory=list)

    def user_of(self, request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None
        self.requests.append({"method": request.method, "path": request.url.path, "token": token})
        return self.users.get(token) if token else None


def _app(accounts: HubAccounts) -> Starlette:
    async def whoami(request: Request) -> JSONResponse:
        user = accounts.user_of(request)
        if user is None:
            return JSONResponse({"error": "Invalid credentials in Authorization header"}, 401)
        return JSONResponse({"type": "user", "name": user, "auth": {"type": "access_token"}})

    async def model_info(request: Request) -> JSONResponse:
        user = accounts.user_of(request)
        repo_id = f"{request.path_params['org']}/{request.path_params['name']}"
        repo = accounts.repos.get(repo_id)
        if user is None:
            return JSONResponse({"error": "Invalid username or password."}, 401)
        if repo is None:
            return JSONResponse({"error": "Repository not found"}, 404)
        if repo.get("gated") and user not in repo.get("readers", ()):
            return JSONResponse({"error": f"Access to model {repo_id} is restricted."}, 403)
        return JSONResponse({"id": repo_id, "modelId": repo_id, "private": False, "sha": "0" * 40})

    async def create_repo(request: Request) -> JSONResponse:
        user = accounts.user_of(request)
        if user is None:
            return JSONResponse({"error": "Invalid credentials"}, 401)
        body = await request.json()
        repo_id = f"{body.get('organization') or user}/{body['name']}"
        accounts.published.setdefault(repo_id, {"files": {}, "commits": 0})["create"] = body
        url = f"{request.base_url}".rstrip("/") + f"/{repo_id}"
        return JSONResponse({"url": url, "name": repo_id, "id": repo_id})

    async def preupload(request: Request) -> JSONResponse:
        if accounts.user_of(request) is None:
            return JSONResponse({"error": "Invalid credentials"}, 401)
        body = await request.json()
        files = [
            {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
            for f in body.get("files", [])
        ]
        return JSONResponse({"files": files, "commitOid": "0" * 40})

    async def commit(request: Request) -> JSONResponse:
        if accounts.user_of(request) is None:
            return JSONResponse({"error": "Invalid credentials"}, 401)
        repo_id = f"{request.path_params['org']}/{request.path_params['name']}"
        record = accounts.published.setdefault(repo_id, {"files": {}, "commits": 0})
        for line in (await request.body()).decode().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            if item.get("key") == "file":
                value = item["value"]
                record["files"][value["path"]] = base64.b64decode(value["content"])
            elif item.get("key") == "header":
                record["message"] = item["value"].get("summary")
            else:
                return JSONResponse({"error": f"not recorded here: {item.get('key')}"}, 400)
        record["commits"] += 1
        oid = f"{record['commits']:040x}"
        url = f"{request.base_url}".rstrip("/") + f"/{repo_id}/commit/{oid}"
        return JSONResponse({"commitUrl": url, "commitOid": oid, "success": True})

    async def validate_yaml(request: Request) -> JSONResponse:
        accounts.user_of(request)
        body = await request.json()
        accounts.validated.append(str(body.get("content", "")))
        return JSONResponse({"errors": [], "warnings": []})

    return Starlette(
        routes=[
            Route("/api/validate-yaml", validate_yaml, methods=["POST"]),
            Route("/api/whoami-v2", whoami),
            Route("/api/models/{org}/{name}", model_info),
            Route("/api/repos/create", create_repo, methods=["POST"]),
            Route("/api/models/{org}/{name}/preupload/{rev}", preupload, methods=["POST"]),
            Route("/api/models/{org}/{name}/commit/{rev}", commit, methods=["POST"]),
        ]
    )


@dataclass
class HubApi:
    url: str
    accounts: HubAccounts


@contextlib.contextmanager
def serve_hub_api() -> Iterator[HubApi]:
    """A fresh endpoint with its own records, served until the block ends."""
    accounts = HubAccounts()
    port = free_port()
    config = uvicorn.Config(_app(accounts), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the Hub API did not start"
        time.sleep(0.05)
    try:
        yield HubApi(f"http://127.0.0.1:{port}", accounts)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def hub_api() -> Iterator[HubApi]:
    with serve_hub_api() as api:
        yield api


#: The token the publishing panel's worker presents; known to ``publish_hub`` as "erin".
PUBLISH_TOKEN = "hf_" + "PanelPublisher" * 2


@pytest.fixture(scope="module")
def publish_hub() -> Iterator[HubApi]:
    """The publishing panel's own endpoint: its records are that module's alone."""
    with serve_hub_api() as api:
        yield api


@pytest.fixture(scope="module")
def publish_panel(
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
    tiny_assets: dict[str, Path],
    publish_hub: HubApi,
) -> Iterator[Panel]:
    """API + one worker whose Hub is ``publish_hub`` (``CPT_HUB_ENDPOINT``, ``CPT_HUB_TOKEN``):
    what it publishes is recorded there. Its roots hold the demo assets and the tiny models built
    locally under the test cache (``tests/support/architectures.py``)."""
    hub_api = publish_hub
    hub_api.accounts.users[PUBLISH_TOKEN] = "erin"
    data_dir = tmp_path_factory.mktemp("publish-panel")
    env = {"CPT_HUB_ENDPOINT": hub_api.url, "CPT_HUB_TOKEN": PUBLISH_TOKEN}
    roots = [tiny_assets["root"], ASSET_CACHE]
    p = start_panel(data_dir, broker_url=redis_url, allowed_roots=roots, extra_env=env)
    try:
        p.start_worker(concurrency=1)
        yield p
    finally:
        p.stop()
