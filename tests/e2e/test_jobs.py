"""A job cancelled while its tool runs, on the real worker's job slot: the tool's process is gone,
the job ends ``cancelled`` with its log kept, and the slot takes the next job."""

from __future__ import annotations

import contextlib
import random
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.support.e2e import TERMINAL
from tests.support.panel import Panel

pytestmark = pytest.mark.slow


def _wait_job(panel: Panel, job_id: str, done: Any, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with panel.client() as c:
        while True:
            job = c.get(f"/api/jobs/{job_id}").json()
            if done(job):
                return dict(job)
            assert time.monotonic() < deadline, job
            time.sleep(0.2)


def _tool_processes(marker: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if any(marker in part for part in p.info["cmdline"] or []):
            found.append(p)
    return found


def test_a_running_tokenizer_job_is_cancelled_and_its_process_is_gone(
    panel: Panel, tiny_assets: dict[str, Path]
) -> None:
    # ~12 MB of made-up words: SentencePiece needs far longer than the test waits to train on it.
    # In the data dir's datasets folder (users' files live there; the rest is the panel's).
    corpus = panel.data_dir / "datasets" / "big-corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    letters = "ಅಆಇಈಉಊಋಎಏಐಒಓಔಕಖಗಘಙಚಛಜಝಞಟಠಡಢಣತಥದಧನಪಫಬಭಮಯರಲವಶಷಸಹಳ"
    words = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(20000)]
    with open(corpus / "kn.txt", "w", encoding="utf-8") as fh:
        for _ in range(120_000):
            fh.write(" ".join(rng.choices(words, k=12)) + "\n")
    params = {"base": str(tiny_assets["tokenizer"]), "corpus": [str(corpus)], "vocab_size": 30000}
    with panel.client() as c:
        r = c.post("/api/jobs", json={"kind": "tokenizer", "params": params})
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
    job = _wait_job(panel, job_id, lambda j: j["status"] == "running", 120)
    # The tool has started for real: its process runs with this job's directory in its argv.
    deadline = time.monotonic() + 60
    while not (procs := _tool_processes(job_id)):
        assert time.monotonic() < deadline, "the tokenizer tool never started"
        time.sleep(0.2)
    time.sleep(1.0)
    started = time.monotonic()
    with panel.client() as c:
        assert c.post(f"/api/jobs/{job_id}/cancel").status_code in (200, 202)
    job = _wait_job(panel, job_id, lambda j: j["status"] in TERMINAL, 60)
    took = time.monotonic() - started
    assert job["status"] == "cancelled", job
    assert took < 30, f"cancel took {took:.1f} s"
    _gone, alive = psutil.wait_procs(procs, timeout=10)
    assert not alive, f"left running after the cancel: {[p.pid for p in alive]}"
    with panel.client() as c:
        log = c.get(f"/api/jobs/{job_id}/log").json()["text"]
        assert "cancelled" in log.splitlines()[-1]
        # The slot is free again: a small scan job runs to the end after it.
        r = c.post(
            "/api/jobs", json={"kind": "scan", "params": {"paths": [str(tiny_assets["corpus"])]}}
        )
        assert r.status_code == 201, r.text
    after = _wait_job(panel, r.json()["id"], lambda j: j["status"] in TERMINAL, 120)
    assert after["status"] == "succeeded", after
    print(f"tokenizer job cancelled in {took:.2f} s")


def test_try_it_generates_from_a_checkpoint_as_a_queued_job(
    panel: Panel, tiny_assets: dict[str, Path]
) -> None:
    """A generate job on the worker: the LoRA checkpoint on its base with the extended tokenizer;
    the answer is streamed into the job log after the marker and equals the same greedy decoding
    done here in-process."""
    from cpt_contract.jobs import GENERATE_MARKER
    from tests.support.e2e import submit, tiny_config, wait_final

    run = wait_final(panel, submit(panel, tiny_config(tiny_assets, max_steps=4), "try it")["id"])
    assert run["status"] == "succeeded", run
    prompt = "Everyone has the right"
    with panel.client() as c:
        bad = c.post(
            "/api/jobs",
            json={
                "kind": "generate",
                "params": {"run_id": run["id"], "checkpoint": "checkpoint-99", "prompt": prompt},
            },
        )
        assert bad.status_code == 404, bad.text
        empty = c.post(
            "/api/jobs",
            json={
                "kind": "generate",
                "params": {"run_id": run["id"], "checkpoint": "checkpoint-4", "prompt": ""},
            },
        )
        assert empty.status_code == 422 and "prompt" in str(empty.json()["detail"][0]["loc"])
        params = {
            "run_id": run["id"],
            "checkpoint": "checkpoint-4",
            "prompt": prompt,
            "max_new_tokens": 12,
        }
        r = c.post("/api/jobs", json={"kind": "generate", "params": params})
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
    job = _wait_job(panel, job_id, lambda j: j["status"] in TERMINAL, 180)
    with panel.client() as c:
        log = c.get(f"/api/jobs/{job_id}/log").json()["text"]
    assert job["status"] == "succeeded", (job, log)
    result = job["result"]
    assert result["prompt"] == prompt and 0 < result["new_tokens"] <= 12
    assert (
        GENERATE_MARKER in log and result["text"].strip()[:10] in log.split(GENERATE_MARKER, 1)[1]
    )

    import torch
    from transformers import AutoTokenizer

    from worker.generate import load_model

    ckpt = Path(run["output_dir"]) / "checkpoint-4"
    tokenizer = AutoTokenizer.from_pretrained(str(ckpt))
    model = load_model(ckpt, tiny_assets["model"]).eval()
    inputs = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    expected = tokenizer.decode(
        out[0, inputs["input_ids"].shape[1] :].tolist(), skip_special_tokens=True
    )
    assert result["text"] == expected


def test_a_job_whose_worker_is_lost_is_tried_once_more_and_the_lost_worker_is_refused(
    tmp_path: Path, tiny_assets: dict[str, Path]
) -> None:
    """A scan job's worker is killed with kill -9 (and its tool with it) while the job runs; a
    worker is started again under the same name. Found: the job said "went silent" and was
    never tried again. Now the recovery loop queues it as attempt 2, which the worker runs to
    the end; a report with attempt 1's lease is refused."""
    import os
    import signal

    from cpt_contract.protocol import LEASE_HEADER
    from tests.support.e2e import embedded_panel

    with embedded_panel(tmp_path / "panel", tiny_assets, CPT_WORKER_LOST_SECONDS="4") as panel:
        corpus = panel.data_dir / "datasets" / "scan-corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        rng = random.Random(1)
        words = ["".join(rng.choice("abcdefghij") for _ in range(6)) for _ in range(5000)]
        with open(corpus / "big.txt", "w", encoding="utf-8") as fh:
            for _ in range(400_000):
                fh.write(" ".join(rng.choices(words, k=10)) + "\n")
        params = {
            "paths": [str(corpus)],
            "tokenizer": str(tiny_assets["tokenizer_extended"]),
            "block_size": 64,
        }
        with panel.client() as c:
            r = c.post("/api/jobs", json={"kind": "scan", "params": params})
            assert r.status_code == 201, r.text
            job_id = r.json()["id"]
        _wait_job(panel, job_id, lambda j: j["status"] == "running", 120)
        deadline = time.monotonic() + 60
        while not (tool := _tool_processes(job_id)):
            assert time.monotonic() < deadline, "the scan tool never started"
            time.sleep(0.1)
        worker = panel.procs[-1]
        os.killpg(worker.pid, signal.SIGKILL)
        for p in tool:
            with contextlib.suppress(psutil.Error):
                p.kill()
        worker.wait(timeout=10)
        t0 = time.monotonic()
        panel.start_worker(concurrency=1)
        retried = _wait_job(panel, job_id, lambda j: j["attempt"] == 2, 60)
        assert "tried again as attempt 2" in retried["status_reason"], retried
        done = _wait_job(panel, job_id, lambda j: j["status"] in TERMINAL, 300)
        took = time.monotonic() - t0
        print(f"lost job worker: retried and {done['status']} {took:.1f}s after the kill")
        assert done["status"] == "succeeded" and done["attempt"] == 2, done
        assert done["result"]["totals"]["documents"] == 400_000, done["result"]["totals"]
        # The first attempt's lease no longer reports on the job.
        from backend.core.security import job_lease_for
        from cpt_contract.settings import Settings

        settings = Settings(data_dir=panel.data_dir, build_demo=False, _env_file=None)  # type: ignore[call-arg]
        stale = job_lease_for(settings, job_id, 1)
        with panel.client(token=panel.worker_token) as w:
            r = w.post(
                f"/api/internal/jobs/{job_id}/status",
                json={"status": "failed", "reason": "a late report"},
                headers={LEASE_HEADER: stale},
            )
        assert r.status_code == 403, r.text
