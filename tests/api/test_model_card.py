"""A run's model card is written from what the panel recorded (events, config, the launched
argv): downloadable on its own, inside the checkpoint tarball, and handed to a merge job so the
merged directory carries it as README.md. In-process (real app, real SQLite, the worker protocol
as a worker speaks it, the worker's own ``write_files``)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from cpt_contract.protocol import LEASE_HEADER, JobClaimOut
from cpt_contract.settings import Settings
from tests.api.test_inprocess import WORKER_TOKEN
from tests.api.test_inprocess import client as client
from tests.api.test_pickers import _assets_root
from worker.agent.jobs import write_files

WORKER = {"Authorization": f"Bearer {WORKER_TOKEN}"}
ARGV = ["python", "-m", "torch.distributed.run", "--nproc_per_node", "1", "worker/pretrain.py",
        "--model_name_or_path=/models/x", "--do_train"]  # fmt: skip


def _event(seq: int, kind: str, step: int, **fields: Any) -> dict[str, Any]:
    return {"seq": seq, "kind": kind, "step": step, "time": 1.0 + seq, **fields}


def test_the_card_says_what_the_run_measured(client: TestClient, tmp_path: Path) -> None:
    corpus = _assets_root(client) / "corpus" / "kn.txt"
    config = {"data": {"eval_sets": {"kn": str(corpus)}}, "training": {"max_steps": 8}}
    run = client.post("/api/runs", json={"preset": "tiny-demo", "config": config}).json()
    rid = run["id"]
    r = client.post(f"/api/internal/runs/{rid}/claim", json={"attempt": 1, "worker": "w"},
                    headers=WORKER)  # fmt: skip
    lease = {**WORKER, LEASE_HEADER: r.json()["lease"]}
    status = {"attempt": 1, "status": "running", "argv": ARGV}
    assert client.post(f"/api/internal/runs/{rid}/status", json=status, headers=lease).is_success
    output = (tmp_path / "data").resolve() / "runs" / rid / "output"
    (output / "checkpoint-8").mkdir(parents=True)
    (output / "checkpoint-8" / "adapter_config.json").write_text("{}")
    vocabulary = {"message": "vocabulary extended from 384 to 768 tokens; new rows: subtoken_mean"}
    sources = [{"name": "corpus", "weight": 1, "files": 1, "documents": 10, "tokens": 12345,
                "blocks": 190}]  # fmt: skip
    sets = [{"name": "kn", "path": str(corpus), "documents": 10, "characters": 100, "tokens": 80}]
    events = [
        _event(1, "start", 0, max_steps=8, finetuning_type="lora", vocabulary=vocabulary,
               data_sources=sources, eval_sets=sets, total_params=10, trainable_params=2),
        _event(2, "eval", 0, eval_loss=2.0, perplexity=7.38905609893065,
               eval_kn_bits_per_char=3.5),
        _event(3, "eval", 8, eval_loss=1.5, perplexity=4.4816890703380645,
               eval_kn_bits_per_char=2.75),
        _event(4, "checkpoint", 8, path=str(output / "checkpoint-8"), name="checkpoint-8"),
    ]  # fmt: skip
    r = client.post(f"/api/internal/runs/{rid}/events", json={"attempt": 1, "events": events},
                    headers=lease)  # fmt: skip
    assert r.status_code == 200, r.text

    r = client.get(f"/api/runs/{rid}/model-card", params={"checkpoint": "checkpoint-8"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/markdown")
    assert 'filename="README.md"' in r.headers["content-disposition"]
    card = r.text
    assert card.startswith("---\n") and "language:\n- kn\n" in card
    assert "| kn | 3.5 | 2.75 | -0.75 |" in card  # bits/char at step 0, at the end, change
    assert "| corpus | 1 | 1 | 10 | 12345 | 190 |" in card  # the data source's token count
    assert vocabulary["message"] in card
    assert "```yaml" in card and "max_steps: 8" in card  # the training config
    assert "torchrun --nproc_per_node 1 worker/pretrain.py" in card  # the launched command
    assert client.get(f"/api/runs/{rid}/model-card", params={"checkpoint": "checkpoint-9"}
                      ).status_code == 404  # fmt: skip

    # The checkpoint's tarball carries the same card.
    tar = client.get(f"/api/runs/{rid}/checkpoints/checkpoint-8/download")
    with tarfile.open(fileobj=io.BytesIO(tar.content)) as tf:
        names = tf.getnames()
        readme = tf.extractfile("checkpoint-8/README.md")
        assert readme is not None and readme.read().decode() == card, names
    assert "checkpoint-8/adapter_config.json" in names

    # A LoRA checkpoint ships from its merge: export and publish are refused until one exists.
    ship = {"run_id": rid, "checkpoint": "checkpoint-8"}
    for kind, extra in (("export", {}), ("publish", {"repo_id": "org/kn"})):
        r = client.post("/api/jobs", json={"kind": kind, "params": {**ship, **extra}})
        assert r.status_code == 409 and "merge it first" in r.text, r.text
    # A merge job's claim hands the card over; the worker writes it into the merged dir.
    job = client.post(f"/api/runs/{rid}/checkpoints/checkpoint-8/merge").json()
    r = client.post(f"/api/internal/jobs/{job['job_id']}/claim", json={"worker": "w"},
                    headers=WORKER)  # fmt: skip
    claim = JobClaimOut.model_validate(r.json())
    assert claim.files == {"README.md": card}
    merged = Path(job["output"])
    merged.mkdir(parents=True)
    # What the worker wrote when it launched the run (the merge reads the base model from it).
    (output.parent / "config.json").write_text(json.dumps(run["config"]))
    write_files(Settings(_env_file=None, data_dir=tmp_path / "data"), claim)  # type: ignore[call-arg]
    assert (merged / "README.md").read_text(encoding="utf-8") == card
    done = {"status": "succeeded", "result": {"output": str(merged)}}
    r = client.post(f"/api/internal/jobs/{job['job_id']}/status", json=done,
                    headers={**WORKER, LEASE_HEADER: claim.lease})  # fmt: skip
    assert r.status_code == 200, r.text
    r = client.post("/api/jobs", json={"kind": "export", "params": ship})
    assert r.status_code == 201, r.text
