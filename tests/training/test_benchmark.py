"""Benchmarks on checkpoints with lm-evaluation-harness (``python -m worker.benchmark``): a
two-language multiple-choice task in the harness's YAML over local JSONL (English and Russian
sentences from package-shipped text, ``tests/support/benchmark.py``), scored on the tiny model's
LoRA checkpoint through its adapter (no merge) and on SmolLM2-135M, whose English score is above
chance (1/4). Task files that would run code or read outside the roots are refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cpt_contract.roots import Roots
from tests.support.benchmark import CHOICES, items, write_two_languages
from tests.support.panel import ASSET_CACHE
from tests.support.pretrain import train_env
from worker import demo_assets
from worker.benchmark.taskfiles import TaskFileError, load_task_file, load_task_files

ROOT = Path(__file__).resolve().parents[2]


def _tool(
    checkpoint: Path, out: Path, *flags: str, env: dict[str, str] | None = None
) -> dict[str, Any]:
    argv = [sys.executable, "-m", "worker.benchmark", f"--checkpoint={checkpoint}", *flags]
    proc = subprocess.run(
        [*argv, f"--json={out}"],
        cwd=ROOT,
        env={**train_env(), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return dict(json.loads(out.read_text()))


def _scores(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    return {t["task"]: {m["metric"]: m["value"] for m in t["metrics"]} for t in result["tasks"]}


def test_task_files_that_run_code_or_leave_the_roots_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "allowed"
    tasks = write_two_languages(root / "tasks")
    roots = Roots((root,))
    config = load_task_file(tasks["en"], roots)
    # Relative data files are the YAML's folder's, made absolute.
    assert config["dataset_kwargs"]["data_files"]["test"] == str(
        root / "tasks" / "udhr_mc_en.jsonl"
    )
    assert [c["task"] for c in load_task_files([root / "tasks"], roots)] == [
        "udhr_mc_en",
        "udhr_mc_ru",
    ]

    text = tasks["en"].read_text()
    bad = root / "tasks" / "bad.yaml"
    cases = {
        "runs Python": text.replace('"{{context}}"', "!function utils.doc_to_text"),
        "is not local": text.replace("dataset_path: json", "dataset_path: allenai/ai2_arc"),
        "outside the allowed roots": text.replace("udhr_mc_en.jsonl", str(tmp_path / "x.jsonl")),
        "no 'task:' name": text.replace("task: udhr_mc_en", "group: x"),
        "runs code": text.replace("dataset_path: json", "dataset_path: json\ncustom_dataset: x"),
    }
    (tmp_path / "x.jsonl").write_text("{}\n")
    for why, yaml_text in cases.items():
        bad.write_text(yaml_text)
        with pytest.raises(TaskFileError, match=why):
            load_task_file(bad, roots)
    bad.write_text(text)
    with pytest.raises(TaskFileError, match="also defined"):
        load_task_files([root / "tasks"], roots)


def test_the_tiny_lora_checkpoint_is_scored_through_its_adapter_in_two_languages(
    tmp_path: Path,
    lora_run: tuple[subprocess.CompletedProcess[str], Path],
    tiny_assets: dict[str, Path],
) -> None:
    _, out = lora_run
    checkpoint = out / "checkpoint-16"
    assert (checkpoint / "adapter_config.json").is_file()
    tasks = write_two_languages(tmp_path / "tasks")
    result = _tool(
        checkpoint,
        tmp_path / "result.json",
        f"--base={tiny_assets['model']}",
        f"--task_file={tmp_path / 'tasks'}",
        "--batch_size=4",
    )
    scores = _scores(result)
    assert set(scores) == {"udhr_mc_en", "udhr_mc_ru"}, result
    for task in result["tasks"]:
        assert {m["metric"] for m in task["metrics"]} == {"acc", "acc_norm"}
        assert all(0 <= m["value"] <= 1 and m["stderr"] is not None for m in task["metrics"])
    lang = {"udhr_mc_en": "en_Latn", "udhr_mc_ru": "ru_Cyrl"}
    assert {t["task"]: t["samples"] for t in result["tasks"]} == {
        t: len(items(lang[t])) for t in lang
    }
    # --limit cuts each task to that many documents.
    limited = _tool(
        checkpoint,
        tmp_path / "limited.json",
        f"--base={tiny_assets['model']}",
        f"--task_file={tasks['ru']}",
        "--limit=5",
    )
    assert [(t["task"], t["samples"]) for t in limited["tasks"]] == [("udhr_mc_ru", 5)]


def test_a_task_file_outside_the_roots_handed_down_fails_the_tool(
    tmp_path: Path, tiny_assets: dict[str, Path]
) -> None:
    write_two_languages(tmp_path / "tasks")
    elsewhere = tmp_path / "roots"
    elsewhere.mkdir()
    argv = [sys.executable, "-m", "worker.benchmark", f"--checkpoint={tiny_assets['model']}"]
    proc = subprocess.run(
        [*argv, f"--task_file={tmp_path / 'tasks' / 'udhr_mc_en.yaml'}"],
        cwd=ROOT,
        env={**train_env(), **Roots((elsewhere,)).env()},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "outside the allowed roots" in proc.stderr, proc.stderr


@pytest.mark.slow
def test_smollm2_scores_above_chance_on_the_english_task(tmp_path: Path) -> None:
    smollm2 = demo_assets.ensure_smollm2(ASSET_CACHE)
    write_two_languages(tmp_path / "tasks")
    result = _tool(smollm2, tmp_path / "result.json", f"--task_file={tmp_path / 'tasks'}")
    scores = _scores(result)
    print("SmolLM2-135M:", json.dumps(scores))
    chance = 1 / CHOICES
    en = next(t for t in result["tasks"] if t["task"] == "udhr_mc_en")
    acc = next(m for m in en["metrics"] if m["metric"] == "acc_norm")
    # Above chance by more than two standard errors (0.75 ± 0.07 measured on 40 items).
    assert acc["value"] - 2 * acc["stderr"] > chance, en
    assert 0 <= scores["udhr_mc_ru"]["acc"] <= 1
