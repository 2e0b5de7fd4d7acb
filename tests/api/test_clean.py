"""The clean job's bad input, in-process (the real app through ``TestClient``): each mistake is a
422 at its field with the fix, and a good job is queued with its paths resolved."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cpt_contract.settings import Settings
from tests.support.api import client_for, make_assets, settings_for


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[TestClient, Settings, dict[str, Path]]]:
    assets = make_assets(tmp_path / "assets")
    settings = settings_for(tmp_path, assets["root"])
    with client_for(settings) as c:
        yield c, settings, assets


def _post(client: TestClient, **params: Any) -> Any:
    return client.post("/api/jobs", json={"kind": "clean", "params": params})


def _locs(r: Any) -> list[list[Any]]:
    assert r.status_code == 422, r.text
    return [e["loc"] for e in r.json()["detail"]]


def test_bad_clean_input_is_a_422_at_its_field(
    setup: tuple[TestClient, Settings, dict[str, Path]],
) -> None:
    client, settings, assets = setup
    corpus = str(assets["corpus"])
    ok_steps = [{"step": "exact_dedup"}]

    r = _post(
        client, sources=[corpus], name="x", steps=[{"step": "language", "keep": ["en", "xx"]}]
    )
    assert ["body", "params", "steps", 0, "language", "keep"] in _locs(r)
    assert "unknown language code 'xx'" in r.text

    r = _post(client, sources=[corpus], name="x", steps=[{"step": "near_dedup", "threshold": 1.5}])
    assert ["body", "params", "steps", 0, "near_dedup", "threshold"] in _locs(r)
    bad_ratio = {"step": "language", "keep": ["en"], "thresholds": {"en": 2}}
    r = _post(client, sources=[corpus], name="x", steps=[bad_ratio])
    assert ["body", "params", "steps", 0, "language", "thresholds", "en"] in _locs(r)
    r = _post(
        client, sources=[corpus], name="x", steps=[{"step": "quality", "max_digit_ratio": -1}]
    )
    assert ["body", "params", "steps", 0, "quality", "max_digit_ratio"] in _locs(r)
    r = _post(client, sources=[corpus], name="x", steps=[{"step": "nope"}])
    assert r.status_code == 422

    settings.datasets_dir.joinpath("taken").mkdir(parents=True)
    r = _post(client, sources=[corpus], name="taken", steps=ok_steps)
    assert ["body", "params", "name"] in _locs(r) and "exists: pick another name" in r.text
    r = _post(client, sources=[corpus], name="../up", steps=ok_steps)
    assert ["body", "params", "name"] in _locs(r)

    binary = assets["root"] / "blob.txt"
    binary.write_bytes(b"\x00\x01\x02PK\x03\x04" * 100)
    latin1 = assets["root"] / "latin1.jsonl"
    latin1.write_bytes('{"text": "caf\xe9 cr\xe8me"}\n'.encode("latin-1") * 10)
    sources = [corpus, str(binary), str(assets["model"]), str(latin1)]
    r = _post(client, sources=sources, name="y", steps=ok_steps)
    locs = _locs(r)
    assert ["body", "params", "sources", 1] in locs and "binary" in r.text
    assert ["body", "params", "sources", 2] in locs and "model's folder" in r.text
    assert ["body", "params", "sources", 3] in locs and "not UTF-8" in r.text
    assert ["body", "params", "sources", 0] not in locs

    r = _post(client, sources=["/etc"], name="z", steps=ok_steps)
    assert ["body", "params", "sources", 0] in _locs(r)
    r = _post(client, sources=[corpus], name="z", steps=ok_steps, output_root="/tmp")
    assert ["body", "params", "output_root"] in _locs(r)
    # Nothing was made by any refused job.
    assert [p.name for p in settings.datasets_dir.iterdir()] == ["taken"]


def test_a_good_clean_job_is_queued_with_resolved_paths(
    setup: tuple[TestClient, Settings, dict[str, Path]],
) -> None:
    client, _settings, assets = setup
    steps = [
        {"step": "language", "keep": ["kn"], "thresholds": {"kn": 0.3}},
        {"step": "near_dedup"},
        {"step": "quality"},
    ]
    r = _post(client, sources=[str(assets["corpus"])], name="kn-clean", steps=steps)
    assert r.status_code == 201, r.text
    params = r.json()["params"]
    assert params["sources"] == [str(assets["corpus"].resolve())]
    assert [s["step"] for s in params["steps"]] == ["language", "near_dedup", "quality"]
    assert params["steps"][1]["num_perm"] == 128  # defaults filled in, as the worker will run it
    schema = client.get("/api/schema/jobs").json()["clean"]
    assert set(schema["properties"]) >= {"sources", "name", "steps", "tokenizer"}
