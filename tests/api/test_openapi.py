"""The OpenAPI document is clean, and fuzzing the live API never produces a 5xx."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis import GenerationMode

from cpt_contract.protocol import LEASE_HEADER
from tests.support.panel import Panel

Api = tuple[Panel, dict[str, Path]]
#: Examples per operation and mode. The suite's size; ``CPT_FUZZ_EXAMPLES=400`` (and
#: ``CPT_FUZZ_SCENARIOS``) makes the long run docs/security.md reports, with the same code.
EXAMPLES = int(os.environ.get("CPT_FUZZ_EXAMPLES", "6"))
SCENARIOS = int(os.environ.get("CPT_FUZZ_SCENARIOS", "15"))


@pytest.fixture(scope="module")
def openapi(api: Api) -> dict[str, Any]:
    panel, _ = api
    with panel.client() as c:
        return c.get("/openapi.json").json()


def test_operations_are_named_tagged_and_typed(openapi: dict[str, Any]) -> None:
    ops = [
        (path, method, op) for path, item in openapi["paths"].items() for method, op in item.items()
    ]
    assert len(ops) >= 25
    ids = [op["operationId"] for _, _, op in ops]
    assert len(ids) == len(set(ids))
    for path, method, op in ops:
        tag = op["tags"][0]
        assert op["operationId"].startswith(f"{tag}-"), (path, method)
        ok = [code for code in op["responses"] if code.startswith("2")]
        assert ok, (path, method)
        content = op["responses"][ok[0]].get("content")
        if ok[0] != "204":
            assert content, f"{method} {path} documents no response body"
        if path != "/api/health":
            assert "401" in op["responses"], f"{method} {path} does not document 401"
    assert "/api/runs/{run_id}/stream" in openapi["paths"]


#: Fixed, so a failure found once is found again (hypothesis' database is off too).
SEED = 20261202
#: Every check schemathesis has (status codes, content types, headers and bodies conform to
#: the document, negative data is rejected, positive data accepted, auth not ignored ...).
CHECKS = list(schemathesis.checks.CHECKS.get_all())


def _fuzz(
    strategy: Any,
    base_url: str,
    headers: dict[str, str],
    failures: list[str],
    seen: Counter[int],
) -> None:
    @given(case=strategy)
    @seed(SEED)
    @settings(
        max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def check(case: Any) -> None:
        try:
            response = case.call_and_validate(
                base_url=base_url, headers=headers, timeout=30, checks=CHECKS
            )
            seen[response.status_code] += 1
        except (AssertionError, ExceptionGroup) as exc:  # failed checks: report them all at the end
            failures.append(
                f"{case.method} {case.formatted_path} {case.query} {case.body!r:.200}: "
                + " ".join(str(exc).split())[:600]
            )

    check()


@pytest.fixture(scope="module")
def pinned(api: Api) -> dict[str, str]:
    """A real run (claimed, with a checkpoint) and a real job: generated ids alone would only
    ever reach the routes' 404 branch."""
    panel, assets = api
    with panel.client() as c, panel.client(token=panel.worker_token) as w:
        run = c.post("/api/runs", json={"preset": "tiny-demo", "config": {}}).json()
        rid = run["id"]
        claim = w.post(f"/api/internal/runs/{rid}/claim", json={"attempt": 1, "worker": "fuzz"})
        lease = claim.json()["lease"]
        out = panel.data_dir.resolve() / "runs" / rid / "output" / "checkpoint-3"
        out.mkdir(parents=True)
        (out / "trainer_state.json").write_text("{}")
        event = {"seq": 1, "kind": "checkpoint", "step": 3, "time": 1.0, "path": str(out)}
        r = w.post(
            f"/api/internal/runs/{rid}/events",
            json={"attempt": 1, "events": [event]},
            headers={LEASE_HEADER: lease},
        )
        assert r.status_code == 200, r.text
        job = c.post(
            "/api/jobs", json={"kind": "scan", "params": {"paths": [str(assets["corpus"])]}}
        )
        assert job.status_code == 201, job.text
    return {"run_id": rid, "name": "checkpoint-3", "job_id": job.json()["id"], "lease": lease}


def _pin(ids: dict[str, str]) -> Any:
    def pin(case: Any) -> Any:
        params = dict(case.path_parameters or {})
        for key in params:
            if key in ids:
                params[key] = ids[key]
        case.path_parameters = params
        return case

    return pin


def test_fuzzing_passes_every_check(api: Api, pinned: dict[str, str]) -> None:
    """Schemathesis-generated requests (positive and negative) for every operation, with every
    check and a fixed seed, once with generated ids and once with the pinned real ones.

    Driven by hand (one hypothesis run per operation) because schemathesis' pytest plugin does
    not load under this pytest. Streams never end: skipped. DELETE runs last (it would remove
    the pinned run).
    """
    panel, _ = api
    schema = schemathesis.openapi.from_url(panel.url + "/openapi.json")
    failures: list[str] = []
    seen: Counter[int] = Counter()
    tested = 0
    ops = [result.ok() for result in schema.get_all_operations()]
    ops.sort(key=lambda op: op.method.upper() == "DELETE")
    for op in ops:
        if op.path.endswith("/stream"):
            continue
        internal = op.path.startswith("/api/internal")
        token = panel.worker_token if internal else panel.token
        headers = {"Authorization": f"Bearer {token}"}
        if internal:
            headers[LEASE_HEADER] = pinned["lease"]
        positive = op.as_strategy(GenerationMode.POSITIVE)
        negative = op.as_strategy(GenerationMode.NEGATIVE)
        _fuzz(positive | negative, panel.url, headers, failures, seen)
        if "{" in op.path:
            _fuzz(positive.map(_pin(pinned)), panel.url, headers, failures, seen)
        tested += 1
    print(f"\n{tested} operations, {sum(seen.values())} requests, statuses {dict(seen)}")
    assert tested >= 20
    # The fuzzing reached the handlers: some requests succeeded, some were rejected as invalid.
    assert sum(n for code, n in seen.items() if code < 300) > 10, seen
    assert seen[422] > 10, seen
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:15])


def test_stateful_fuzzing_passes_every_check(api: Api, pinned: dict[str, str]) -> None:
    """Scenarios that chain the operations by the links schemathesis infers (a run created,
    then read, patched, cloned, cancelled, its checkpoints listed ...), every check on every
    answer; the worker's routes with the worker token and the pinned run's lease."""
    panel, _ = api
    schema = schemathesis.openapi.from_url(panel.url + "/openapi.json")
    failures: list[str] = []
    seen: Counter[int] = Counter()

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            internal = case.path.startswith("/api/internal")
            headers = {"Authorization": f"Bearer {panel.worker_token if internal else panel.token}"}
            if internal:
                headers[LEASE_HEADER] = pinned["lease"]
            return {"base_url": panel.url, "headers": headers, "timeout": 30}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            seen[response.status_code] += 1
            try:
                case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)
            except (AssertionError, ExceptionGroup) as exc:
                failures.append(
                    f"{case.method} {case.formatted_path} {case.body!r:.200}: "
                    + " ".join(str(exc).split())[:600]
                )

    Workflow.run(
        settings=settings(
            max_examples=SCENARIOS,
            stateful_step_count=6,
            # Generation only: the machine's choices depend on the live server's answers, so
            # a replay (shrinking) would draw differently; failures are collected, not raised.
            phases=[Phase.generate],
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
    )
    print(f"\nstateful: {sum(seen.values())} requests, statuses {dict(seen)}")
    assert sum(seen.values()) >= SCENARIOS, seen
    assert not [c for c in seen if c >= 500], seen
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:15])
