"""Security of the API's input handling, in process (``TestClient`` on the real app, a real
SQLite database): what the panel refuses, and that every refusal is a 4xx naming the field.

The attacks are those seen against the panel: flags in ``training.extra_args`` that move the
output or the data outside the allowed roots, files symlinked out of an allowed directory,
wild integers, NUL bytes and lone surrogates, oversized bodies, forged worker reports.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from backend.api.deps import app_settings
from backend.main import create_app
from cpt_contract.protocol import LEASE_HEADER
from cpt_contract.settings import Settings
from tests.support.api import make_assets, make_demo

TOKEN, WORKER_TOKEN = "security-token-0123456789", "security-worker-0123456789"
WORKER = {"Authorization": f"Bearer {WORKER_TOKEN}"}


@pytest.fixture
def assets(tmp_path: Path) -> dict[str, Path]:
    return make_assets(tmp_path / "assets")


@pytest.fixture
def client(tmp_path: Path, assets: dict[str, Path]) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path / "data",
        api_token=TOKEN,
        worker_token=WORKER_TOKEN,
        allowed_roots=[assets["root"]],
        build_demo=False,
    )
    make_demo(settings.resolved_data_dir)
    app = create_app(settings)
    app.dependency_overrides[app_settings] = lambda: settings
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c


def _preview(client: TestClient, config: dict[str, Any]) -> Any:
    return client.post("/api/runs/preview", json={"preset": "tiny-demo", "config": config})


def _locs(r: Any) -> list[list[Any]]:
    return [e["loc"] for e in r.json()["detail"]]


# --- training.extra_args ------------------------------------------------------------------------


def test_extra_args_cannot_move_output_or_data_outside_the_roots(client: TestClient) -> None:
    attack = ["--output_dir", "/anywhere", "--dataset_dir", "/anywhere"]
    for path in ("/api/runs/preview", "/api/runs"):
        r = client.post(
            path, json={"preset": "tiny-demo", "config": {"training": {"extra_args": attack}}}
        )
        assert r.status_code == 422, r.text
        (err,) = r.json()["detail"]
        assert err["loc"] == ["body", "config", "training", "extra_args"]
        assert "'--output_dir'" in err["msg"] and "panel sets it" in err["msg"]
    assert client.get("/api/runs").json()["total"] == 0
    dup = _preview(client, {"training": {"extra_args": ["--optim", "sgd", "--optim=adamw_torch"]}})
    assert dup.status_code == 422 and "twice" in dup.json()["detail"][0]["msg"]
    ok = _preview(client, {"training": {"extra_args": ["--optim", "adamw_torch"]}})
    assert ok.status_code == 200, ok.text
    assert ok.json()["argv"][-2:] == ["--optim", "adamw_torch"]


def test_clone_cannot_smuggle_extra_args(client: TestClient) -> None:
    run = client.post("/api/runs", json={"preset": "tiny-demo", "config": {}}).json()
    r = client.post(
        f"/api/runs/{run['id']}/clone",
        json={"config": {"training": {"extra_args": ["--output_dir", "/tmp/x"]}}},
    )
    assert r.status_code == 422 and _locs(r) == [["body", "config", "training", "extra_args"]]


# --- symlinks out of an allowed directory -------------------------------------------------------


def test_a_file_symlinked_out_of_a_dataset_dir_is_refused(
    client: TestClient, assets: dict[str, Path], tmp_path: Path
) -> None:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("not yours\n")
    corpus = assets["corpus"]
    (corpus / "notes.txt").symlink_to(secret)
    r = _preview(client, {"data": {"dataset_dir": str(corpus)}})
    assert r.status_code == 422, r.text
    (err,) = r.json()["detail"]
    assert err["loc"] == ["body", "config", "data", "dataset_dir"]
    assert err["type"] == "path_escapes_roots" and "notes.txt" in err["msg"]
    (corpus / "notes.txt").unlink()
    # A link inside the roots is fine; a linked directory is followed, and checked in turn.
    (corpus / "inside.txt").symlink_to(corpus / "kn.txt")
    assert _preview(client, {"data": {"dataset_dir": str(corpus)}}).status_code == 200
    (corpus / "sub").symlink_to(secret.parent, target_is_directory=True)
    r = _preview(client, {"data": {"dataset_dir": str(corpus)}})
    assert r.status_code == 422 and "sub" in r.json()["detail"][0]["msg"]
    (corpus / "sub").unlink()
    # A loop of links inside the roots ends (each directory is walked once).
    (corpus / "loop").symlink_to(corpus, target_is_directory=True)
    assert _preview(client, {"data": {"dataset_dir": str(corpus)}}).status_code == 200


def test_symlinks_are_checked_in_model_tokenizer_sources_and_jobs(
    client: TestClient, assets: dict[str, Path], tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "w.bin").write_bytes(b"x")
    (assets["model"] / "model.safetensors").symlink_to(outside / "w.bin")
    (assets["tokenizer"] / "tokenizer.model").symlink_to(outside / "w.bin")
    mix = assets["root"] / "mix"
    mix.mkdir()
    (mix / "a.txt").symlink_to(outside / "w.bin")
    r = _preview(
        client,
        {
            "model": {
                "model_name_or_path": str(assets["model"]),
                "tokenizer_name_or_path": str(assets["tokenizer"]),
            },
            "data": {"data_sources": [{"path": str(mix)}]},
        },
    )
    assert r.status_code == 422, r.text
    assert sorted(map(tuple, _locs(r))) == [
        ("body", "config", "data", "data_sources", 0, "path"),
        ("body", "config", "model", "model_name_or_path"),
        ("body", "config", "model", "tokenizer_name_or_path"),
    ]
    job = client.post("/api/jobs", json={"kind": "scan", "params": {"paths": [str(mix)]}})
    assert job.status_code == 422 and job.json()["detail"][0]["type"] == "path_escapes_roots"


# --- worker reports: the claim's lease, checkpoints of the run only -----------------------------


def _claimed(client: TestClient) -> tuple[dict[str, Any], dict[str, str]]:
    run = client.post("/api/runs", json={"preset": "tiny-demo", "config": {}}).json()
    r = client.post(
        f"/api/internal/runs/{run['id']}/claim", json={"attempt": 1, "worker": "w"}, headers=WORKER
    )
    assert r.status_code == 200, r.text
    return run, {**WORKER, LEASE_HEADER: r.json()["lease"]}


def _checkpoint(seq: int, path: str, name: str | None) -> dict[str, Any]:
    event: dict[str, Any] = {"seq": seq, "kind": "checkpoint", "step": 5, "time": 1.0, "path": path}
    if name is not None:
        event["name"] = name
    return event


def test_a_worker_token_cannot_register_the_data_dir_as_a_checkpoint(
    client: TestClient, tmp_path: Path
) -> None:
    run, lease = _claimed(client)
    rid = run["id"]
    data = (tmp_path / "data").resolve()
    output = data / "runs" / rid / "output"
    url = f"/api/internal/runs/{rid}/events"
    forged = [
        (str(data), "checkpoint-5"),  # the attack: the user's download tars the DB and tokens
        (str(data), None),
        (str(output / ".." / ".." / ".."), "checkpoint-5"),
        (str(output / "checkpoint-5" / ".." / ".."), None),
        (str(output / "x" / "checkpoint-5"), "checkpoint-5"),
        (str(output / "checkpoint-5"), "checkpoint-6"),
        (str(output / "final"), "final"),
        ("checkpoint-5", "checkpoint-5"),
    ]
    for seq, (path, name) in enumerate(forged, start=1):
        body = {"attempt": 1, "events": [_checkpoint(seq, path, name)]}
        r = client.post(url, json=body, headers=lease)
        assert r.status_code == 422, (path, name, r.text)
        assert r.json()["detail"][0]["loc"] == ["body", "events", 0, "path"]
    assert client.get(f"/api/runs/{rid}/checkpoints").json() == []
    # Without the lease (the worker token alone) nothing is accepted at all.
    good = {"attempt": 1, "events": [_checkpoint(50, str(output / "checkpoint-5"), "checkpoint-5")]}
    assert client.post(url, json=good, headers=WORKER).status_code == 403
    status = {"attempt": 1, "status": "running"}
    assert (
        client.post(f"/api/internal/runs/{rid}/status", json=status, headers=WORKER).status_code
        == 403
    )
    # The real one is accepted and downloads with a safe Content-Disposition.
    (output / "checkpoint-5").mkdir(parents=True)
    (output / "checkpoint-5" / "adapter.bin").write_bytes(b"w")
    assert client.post(url, json=good, headers=lease).status_code == 200
    d = client.get(f"/api/runs/{rid}/checkpoints/checkpoint-5/download")
    assert d.status_code == 200
    assert d.headers["content-disposition"] == (
        f"attachment; filename=\"{rid}-checkpoint-5.tar\"; filename*=UTF-8''{rid}-checkpoint-5.tar"
    )


def test_a_checkpoint_row_outside_its_output_dir_is_never_served(
    client: TestClient, tmp_path: Path
) -> None:
    """Rows stored before the rule (or written to the database by hand) are not trusted."""
    from sqlmodel import Session, create_engine

    from backend.models import Checkpoint

    run, _lease = _claimed(client)
    data = (tmp_path / "data").resolve()
    engine = create_engine(f"sqlite:///{data / 'cpt-panel.db'}")
    with Session(engine) as s:
        s.add(Checkpoint(run_id=run["id"], attempt=1, name="checkpoint-1", step=1, path=str(data)))
        s.add(Checkpoint(run_id=run["id"], attempt=1, name='a"b;c', step=2, path=str(data)))
        s.commit()
    for name in ("checkpoint-1", "a%22b%3Bc"):
        r = client.get(f"/api/runs/{run['id']}/checkpoints/{name}/download")
        assert r.status_code == 404, r.text


def test_content_disposition_cannot_be_broken_by_a_name() -> None:
    from backend.api.routes.common import attachment

    header = attachment('r-1-"; x=y\r\nSet-Cookie: a=b ಕ.tar')
    assert "\r" not in header and "\n" not in header
    fallback = header.split('filename="', 1)[1].split('"', 1)[0]
    assert set(fallback) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    assert header.endswith("%E0%B2%95.tar")


# --- tokens ---------------------------------------------------------------------------------------


def test_wrong_tokens_are_rate_limited_per_client(client: TestClient) -> None:
    wrong = {"Authorization": "Bearer wrong-token-0123456789"}
    codes = [client.get("/api/runs", headers=wrong).status_code for _ in range(20)]
    assert codes == [401] * 20
    r = client.get("/api/runs", headers=wrong)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1, r.text
    # While blocked, even the right token gets 429: the answer must not tell a guesser anything.
    assert client.get("/api/runs").status_code == 429
    # Another client is not affected; a missing token is not a guess.
    app = client.app
    with TestClient(app, client=("10.0.0.9", 5000)) as other:  # type: ignore[arg-type]
        assert (
            other.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        )
        for _ in range(30):
            assert other.get("/api/runs").status_code == 401
        assert (
            other.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        )


def test_the_limiter_drains() -> None:
    from backend.core.ratelimit import FailureLimiter

    now = [0.0]
    limiter = FailureLimiter(burst=3, rate=0.5, max_clients=2, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.retry_after("a") is None
        limiter.failed("a")
    assert limiter.retry_after("a") == 2  # one failure drains in 1 / 0.5 s
    now[0] = 2.0
    assert limiter.retry_after("a") is None
    limiter.failed("b"), limiter.failed("c")  # only the newest two addresses are kept
    assert set(limiter._buckets) == {"b", "c"}


def test_a_hashed_token_in_the_settings_is_enough(tmp_path: Path) -> None:
    import hashlib

    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    settings = Settings(
        data_dir=tmp_path / "data", api_token=f"sha256:{digest}", worker_token=WORKER_TOKEN
    )
    make_demo(settings.resolved_data_dir)
    app = create_app(settings)
    app.dependency_overrides[app_settings] = lambda: settings
    with TestClient(app) as c:
        assert c.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert c.get("/api/runs", headers={"Authorization": f"Bearer {digest}"}).status_code == 401
        # The data dir, the database and the generated key are the panel user's only.
        data = settings.resolved_data_dir
        for path in (data, data / "runs", data / "cpt-panel.db"):
            assert path.stat().st_mode & 0o077 == 0, (path, oct(path.stat().st_mode))


# --- hostile input: always a 4xx, never a 500 ----------------------------------------------------

BIG = 2**63


def test_out_of_range_integers_are_422(client: TestClient) -> None:
    run = client.post("/api/runs", json={"preset": "tiny-demo", "config": {}}).json()
    rid = run["id"]
    for path, params in (
        (f"/api/runs/{rid}/events", {"after_seq": BIG}),
        ("/api/runs", {"offset": BIG}),
        (f"/api/runs/{rid}/logs", {"offset": BIG}),
        (f"/api/runs/{rid}/logs", {"attempt": BIG}),
        (f"/api/runs/{rid}/metrics", {"attempt": BIG}),
        (f"/api/runs/{rid}/metrics", {"step_min": -BIG}),
        (f"/api/runs/{rid}/stream", {"after_seq": BIG}),
    ):
        r = client.get(path, params=params)
        assert r.status_code == 422, (path, params, r.status_code, r.text)
        assert r.json()["detail"][0]["loc"][0] == "query"
    for section, field in (("training", "max_steps"), ("training", "seed"), ("data", "block_size")):
        r = _preview(client, {section: {field: BIG}})
        assert r.status_code == 422 and _locs(r) == [["body", "config", section, field]], r.text
    r = client.post(
        f"/api/internal/runs/{rid}/claim", json={"attempt": BIG, "worker": "w"}, headers=WORKER
    )
    assert r.status_code == 422


def test_nul_and_lone_surrogates_are_422_at_their_field(client: TestClient) -> None:
    cases = [
        ('{"preset": "tiny-demo", "name": "a\\ud800b"}', ["body", "name"]),
        ('{"preset": "tiny-demo", "name": "a\\udc00"}', ["body", "name"]),
        ('{"preset": "tiny-demo", "name": "a\\u0000b"}', ["body", "name"]),
        (
            '{"preset": "tiny-demo", "config": {"data": {"dataset_dir": "/x\\u0000y"}}}',
            ["body", "config", "data", "dataset_dir"],
        ),
        (
            '{"preset": "tiny-demo", "config": {"training": {"extra_args": ["--optim", "\\ud83d"]}}}',
            ["body", "config", "training", "extra_args", 1],
        ),
        ('{"preset": "tiny-demo", "config": {"x\\u0000": 1}}', ["body", "config", "x\\u0000"]),
    ]
    headers = {"content-type": "application/json"}
    for body, loc in cases:
        for path in ("/api/runs", "/api/runs/preview"):
            r = client.post(path, content=body, headers=headers)
            assert r.status_code == 422, (body, r.status_code, r.text)
            assert r.json()["detail"][0]["loc"] == loc, (body, r.text)
    # A surrogate pair (an emoji written as two escapes) is valid text, and so is "\\u0000".
    ok = client.post(
        "/api/runs/preview",
        content='{"preset": "tiny-demo", "name": "\\ud83d\\ude00 \\\\u0000"}',
        headers=headers,
    )
    assert ok.status_code == 200, ok.text
    # NUL in a path of a job, and in a query string.
    job = client.post("/api/jobs", json={"kind": "scan", "params": {"paths": ["/a\x00"]}})
    assert job.status_code == 422 and job.json()["detail"][0]["loc"] == [
        "body",
        "params",
        "paths",
        0,
    ]
    assert client.get("/api/runs", params={"q": "a\x00"}).status_code == 422
    assert client.get("/api/files", params={"kind": "model\x00"}).status_code == 422


def test_the_422_handler_survives_what_it_echoes(client: TestClient) -> None:
    """Worker routes are not scanned for surrogates (logs may hold anything): the validation
    error that echoes the bad input must still serialise."""
    headers = {**WORKER, "content-type": "application/json"}
    for body in (
        '{"name": ["\\ud800"]}',
        '{"name": {"\\udfff": 1}}',
        '{"name": 1e400}',
        '{"name": ' + "[" * 5000 + "]" * 5000 + "}",
    ):
        r = client.post("/api/internal/workers/heartbeat", content=body, headers=headers)
        assert 400 <= r.status_code < 500, (body[:40], r.status_code, r.text[:200])
    # Bytes that are not UTF-8, on a user route.
    r = client.post(
        "/api/runs", content=b'{"name": "\xff\xfe"}', headers={"content-type": "application/json"}
    )
    assert r.status_code == 422, r.text


def test_bodies_are_capped_before_parsing(client: TestClient) -> None:
    big = b'{"preset": "tiny-demo", "name": "' + b"x" * (1024 * 1024) + b'"}'
    r = client.post("/api/runs", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "1 MiB" in r.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it arrives
        yield b'{"preset": "tiny-demo", "config": {'
        for i in range(200_000):
            yield b'"k%d": 1, ' % i
        yield b'"z": 1}}'

    r = client.post(
        "/api/runs/preview", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    # The worker routes take up to 16 MiB (log batches) and no more.
    text = "ಕ" * (3 * 1024 * 1024)  # 9 MiB of UTF-8
    run, lease = _claimed(client)
    ok = client.post(
        f"/api/internal/runs/{run['id']}/logs",
        json={"attempt": 1, "offset": 0, "text": text[: 2 * 1024 * 1024]},
        headers=lease,
    )
    assert ok.status_code == 200, ok.text[:300]
    huge = b'{"attempt": 1, "offset": 0, "text": "' + b"x" * (17 * 1024 * 1024) + b'"}'
    r = client.post(
        f"/api/internal/runs/{run['id']}/logs",
        content=huge,
        headers={**lease, "content-type": "application/json"},
    )
    assert r.status_code == 413 and "16 MiB" in r.json()["detail"]
    bogus = client.post("/api/runs", content=b"{}", headers={"content-length": "12x"})
    assert 400 <= bogus.status_code < 500


def test_a_config_of_many_keys_is_refused_before_it_is_explained(client: TestClient) -> None:
    import time

    config = {"training": {f"k{i}": 1 for i in range(60_000)}}
    t0 = time.perf_counter()
    r = _preview(client, config)
    elapsed = time.perf_counter() - t0
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "too_large", r.text[:300]
    assert elapsed < 2, elapsed  # explaining 60k unknown keys one by one took seconds
    job = client.post("/api/jobs", json={"kind": "scan", "params": {"paths": ["/x"] * 5000}})
    assert job.status_code == 422
