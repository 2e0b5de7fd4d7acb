"""The worker protocol's route class: a plain endpoint still runs off the event loop (it blocks
on the database), keeps its parameters, body and OpenAPI, and its answer is validated."""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import APIRouter, FastAPI, Header
from fastapi.testclient import TestClient
from pydantic import BaseModel

from backend.api.json_route import OrjsonRoute
from backend.main import create_app
from cpt_contract.protocol import LEASE_HEADER


class In(BaseModel):
    n: int


class Out(BaseModel):
    n: int
    thread: int


def _app() -> FastAPI:
    router = APIRouter(route_class=OrjsonRoute)

    @router.post("/blocking/{name}", response_model=Out)
    def blocking(name: str, body: In, x_extra: Annotated[str | None, Header()] = None) -> Out:
        assert name == "a" and x_extra == "hi"
        return Out(n=body.n + 1, thread=threading.get_ident())

    @router.get("/loop")
    async def loop() -> int:
        return threading.get_ident()

    @router.post("/wrong", response_model=Out)
    def wrong() -> dict[str, str]:
        return {"n": "not a number"}

    app = FastAPI()
    app.include_router(router)
    return app


def test_a_plain_endpoint_runs_on_a_thread_with_its_parameters() -> None:
    with TestClient(_app(), raise_server_exceptions=False) as c:
        loop_thread = c.get("/loop").json()
        r = c.post("/blocking/a", json={"n": 41}, headers={"x-extra": "hi"})
        assert r.status_code == 200, r.text
        assert r.json()["n"] == 42
        assert r.json()["thread"] != loop_thread  # never on the event loop
        # The body is still validated (422 at its field), NaN-tolerant JSON still read.
        bad = c.post("/blocking/a", json={"n": "x"}, headers={"x-extra": "hi"})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "n"]
        # ... and so is the answer: a wrong one is the server's error, not a wrong 200.
        assert c.post("/wrong").status_code == 500


def test_the_worker_routes_keep_their_openapi() -> None:
    spec = create_app().openapi()
    op = spec["paths"]["/api/internal/runs/{run_id}/events"]["post"]
    body = op["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/EventsIn")
    assert {p["name"] for p in op["parameters"]} == {"run_id", LEASE_HEADER}
    answer = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["$ref"].endswith("/EventsOut")
