"""The OpenAPI document is clean, and fuzzing the live API never produces a 5xx."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.support.panel import Panel

Api = tuple[Panel, dict[str, Path]]
EXAMPLES = 6


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


def _fuzz(
    strategy: Any, base_url: str, headers: dict[str, str], failures: list[str], seen: Counter[int]
) -> None:
    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def check(case: Any) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        seen[response.status_code] += 1
        if response.status_code >= 500:
            failures.append(
                f"{case.method} {case.formatted_path} {case.query} {case.body!r:.300}"
                f" -> {response.status_code}: {response.text[:300]}"
            )

    check()


def test_fuzzing_never_gives_5xx(api: Api) -> None:
    """Schemathesis-generated requests (positive and negative) for every operation, no 5xx.

    Driven by hand (one hypothesis run per operation) because schemathesis' pytest plugin does
    not load under this pytest. Streams never end and downloads need a real checkpoint: skipped.
    """
    panel, _ = api
    schema = schemathesis.openapi.from_url(panel.url + "/openapi.json")
    failures: list[str] = []
    seen: Counter[int] = Counter()
    tested = 0
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path.endswith(("/stream", "/download")):
            continue
        token = panel.worker_token if op.path.startswith("/api/internal") else panel.token
        headers = {"Authorization": f"Bearer {token}"}
        strategy = op.as_strategy(GenerationMode.POSITIVE) | op.as_strategy(GenerationMode.NEGATIVE)

        _fuzz(strategy, panel.url, headers, failures, seen)
        tested += 1
    assert tested >= 20
    # The fuzzing reached the handlers: some requests succeeded, some were rejected as invalid.
    assert sum(n for code, n in seen.items() if code < 300) > 10, seen
    assert seen[422] > 10, seen
    assert not failures, "\n".join(failures[:10])
