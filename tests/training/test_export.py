"""Export for serving (``worker/export.py``, the export job's tool): a model directory becomes
bf16 safetensors shards with their index, ``generation_config.json``, the tokenizer and the model
card, which transformers loads back; the export and its source are scored on the run's
evaluation sets and the difference is reported. And the job's argv from a run's directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from cpt_contract.jobs import ExportParams
from cpt_contract.protocol import JobClaimOut
from cpt_contract.run_paths import JobPaths, RunPaths
from cpt_contract.settings import Settings
from worker import export
from worker.agent.jobs import tool_argv


def test_an_export_is_sharded_bf16_loads_and_is_scored_against_its_source(
    tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM

    source = tmp_path / "merged"
    shutil.copytree(tiny_assets["model"], source)
    (source / "README.md").write_text("# the card\n")
    corpus = tiny_assets["corpus"]
    sets = {"kn": str(corpus / "udhr_kn_Knda.txt"),
            "en": {"path": str(corpus / "udhr_en_Latn.txt"), "max_characters": 1000}}  # fmt: skip
    out, result = tmp_path / "export", tmp_path / "result.json"
    argv = [f"--source={source}", f"--output={out}", "--max_shard_size=100KB",
            f"--eval_sets={json.dumps(sets)}", "--block_size=64", f"--json={result}"]  # fmt: skip
    assert export.main(argv) == 0
    doc = json.loads(result.read_text())
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) >= 2 and doc["shards"] == len(shards)
    assert all((out / s).is_file() for s in shards)
    for name in ("config.json", "generation_config.json", "tokenizer.json", "README.md"):
        assert (out / name).is_file(), name
    assert (out / "README.md").read_text() == "# the card\n"
    assert not (tmp_path / "export.partial").exists()
    loaded = AutoModelForCausalLM.from_pretrained(str(out))
    assert {p.dtype for p in loaded.parameters()} == {torch.bfloat16}
    rows = {r["set"]: r for r in doc["eval"]}
    assert set(rows) == {"kn", "en"} and rows["en"]["characters"] == 1000
    for r in rows.values():
        assert r["source_bits_per_char"] > 0 and r["export_bits_per_char"] > 0
        assert r["difference"] == r["export_bits_per_char"] - r["source_bits_per_char"]
        assert 0 < abs(r["difference"]) < 0.05, r  # bf16 moves it, a little
    # A second export to the same place is refused, the first left as it is.
    with pytest.raises(SystemExit, match="exists already"):
        export.main(argv)


def test_the_export_job_reads_the_runs_merge_and_evaluation_sets(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    run = RunPaths.of(settings.runs_dir, "r-abc123")
    run.merged("checkpoint-8").mkdir(parents=True)
    (run.merged("checkpoint-8") / "config.json").write_text("{}")
    sets = {"kn": "/data/kn.txt"}
    run.config.write_text(json.dumps({"data": {"eval_sets": sets, "block_size": 128}}))
    params = ExportParams(run_id="r-abc123", checkpoint="checkpoint-8").model_dump()
    claim = JobClaimOut(kind="export", params=params, job_dir=str(tmp_path / "j"), lease="x")
    argv = tool_argv(settings, claim, JobPaths(tmp_path / "j"))
    assert argv[1:3] == ["-m", "worker.export"]
    assert f"--source={run.merged('checkpoint-8')}" in argv
    assert f"--output={run.run_dir / 'exports' / 'checkpoint-8-bfloat16'}" in argv
    assert f"--eval_sets={json.dumps(sets)}" in argv and "--block_size=128" in argv
    assert "--max_shard_size=2GB" in argv and "--dtype=bfloat16" in argv
