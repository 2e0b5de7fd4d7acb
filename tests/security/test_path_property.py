"""Property: any string in any path field either resolves to a regular file or directory inside
the roots (never the panel's state) or is a 422 at that field — for run configs and for jobs.

The strings are built from the pieces that broke things: the roots, the data dir and its state
files, ``..``, ``~``, links out of a root, FIFOs, long names, NUL, and any text.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.security.conftest import client_for, settings_for

FIELDS: list[tuple[str, ...]] = [
    ("model", "model_name_or_path"),
    ("model", "tokenizer_name_or_path"),
    ("data", "dataset_dir"),
    ("data", "train_file"),
    ("data", "eval_sets", "x"),
    ("data", "data_sources", "0"),
    ("job", "scan"),
]


def _world(tmp: Path) -> tuple[TestClient, Any, list[str]]:
    """A panel whose roots hold good and bad things; the pieces paths are made of."""
    root = tmp / "root"
    (root / "corpus").mkdir(parents=True)
    (root / "corpus" / "a.txt").write_text("text\n")
    (root / "model").mkdir()
    (root / "model" / "config.json").write_text('{"model_type": "llama"}')
    (root / "model" / "model.safetensors").write_bytes(b"")
    (root / "tok").mkdir()
    (root / "tok" / "tokenizer.json").write_text("{}")
    os.mkfifo(root / "fifo.txt")
    (tmp / "outside").mkdir()
    (tmp / "outside" / "s.txt").write_text("secret\n")
    (root / "out-link.txt").symlink_to(tmp / "outside" / "s.txt")
    (root / "dir-link").symlink_to(tmp / "outside")
    settings_ = settings_for(tmp, root, tmp / "data")  # a root that holds the data dir, too
    client = client_for(settings_).__enter__()  # the lifespan: migrations, data dirs
    data = settings_.resolved_data_dir
    (data / ".api_token").write_text("t\n")
    pieces = [
        str(root),
        str(root / "corpus"),
        str(root / "corpus" / "a.txt"),
        str(root / "model"),
        str(root / "tok"),
        str(root / "fifo.txt"),
        str(root / "out-link.txt"),
        str(root / "dir-link"),
        str(data),
        str(data / ".api_token"),
        str(data / "cpt-panel.db"),
        str(settings_.demo_dir / "corpus"),
        str(tmp / "outside"),
        "/",
        "/etc/hostname",
    ]
    return client, settings_.roots, pieces


_tmp: dict[str, Any] = {}


@given(
    field=st.sampled_from(FIELDS),
    base=st.integers(0, 14),
    suffix=st.lists(
        st.sampled_from(["..", ".", "a.txt", "corpus", "~", "x" * 256, "ಕ", "", "\x00", "s.txt"])
        | st.text(max_size=12),
        max_size=3,
    ),
    raw_text=st.none() | st.text(max_size=30),
)
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    derandomize=True,  # the same examples every run: CI stays reproducible
)
def test_every_path_is_admitted_and_regular_or_a_422_at_its_field(
    tmp_path_factory: Any,
    field: tuple[str, ...],
    base: int,
    suffix: list[str],
    raw_text: str | None,
) -> None:
    if "world" not in _tmp:
        _tmp["world"] = _world(tmp_path_factory.mktemp("property"))
    client, roots, pieces = _tmp["world"]
    raw = raw_text if raw_text is not None else "/".join([pieces[base], *suffix])
    if field == ("job", "scan"):
        r = client.post("/api/jobs", json={"kind": "scan", "params": {"paths": [raw]}})
        loc: list[Any] = ["body", "params", "paths", 0]
        accepted = r.json()["params"]["paths"][0] if r.status_code == 201 else None
    else:
        section, name, *key = field
        value: Any = raw
        if name == "eval_sets":
            value = {key[0]: raw}
        elif name == "data_sources":
            value = [{"path": raw}]
        config = {section: {name: value}}
        r = client.post("/api/runs/preview", json={"preset": "tiny-demo", "config": config})
        loc = ["body", "config", section, name]
        loc += (
            ["x", "path"] if name == "eval_sets" else [0, "path"] if name == "data_sources" else []
        )
        accepted = None
        if r.status_code == 200:
            got = r.json()["config"][section][name]
            accepted = (
                got["x"]["path"]
                if name == "eval_sets"
                else got[0]["path"]
                if name == "data_sources"
                else got
            )
    assert r.status_code in (200, 201, 422), (raw, r.status_code, r.text)
    if accepted == "":
        return  # an empty field is an unset one: no path is used
    if accepted is None:
        assert r.status_code == 422, (raw, r.text)
        locs = [e["loc"] for e in r.json()["detail"]]
        # A set given as a bare path is refused where the user wrote it (``eval_sets.x``) or at
        # the path it stands for (``eval_sets.x.path``).
        assert loc in locs or (loc[-1] == "path" and loc[:-1] in locs), (raw, locs)
        return
    real = os.path.realpath(accepted)
    assert roots.admits(real), (raw, real)
    assert os.path.isfile(real) or os.path.isdir(real), (raw, real)
    for top, _dirs, files in os.walk(real, followlinks=True):
        for name_ in files:
            entry = os.path.realpath(os.path.join(top, name_))
            assert roots.admits(entry) and os.path.isfile(entry), (raw, entry)
