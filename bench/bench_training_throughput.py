"""Training throughput (tokens/s) of worker/pretrain.py on this machine's CPUs.

Each row is a real ``python worker/pretrain.py`` run; tokens/s comes from its events.jsonl: tokens
between the first and the last ``log`` event over the wall time between them (so model loading,
data caching and the first, warm-up step are excluded). Baseline per model: full-weight training
of the same model in the same script invocation.

    python bench/bench_training_throughput.py                  # tiny Llama + SmolLM2-135M
    python bench/bench_training_throughput.py --skip-smollm2   # tiny Llama only (~1 min)
    python bench/bench_training_throughput.py --threads 0      # torch's default thread count
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from worker import demo_assets  # noqa: E402

CACHE = Path(os.environ.get("CPT_TEST_CACHE", Path.home() / ".cache" / "cpt-panel-tests"))


@dataclass
class Case:
    name: str
    model: str
    finetuning_type: str
    extra: list[str]
    block_size: int
    batch: int
    steps: int
    baseline: str | None = None  # name of the row this one is compared with


@dataclass
class Result:
    case: Case
    tokens_per_second: float
    seconds_per_step: float
    wall_s: float


def run_case(case: Case, corpus: Path, work: Path, env: dict[str, str]) -> Result:
    out = work / case.name.replace(" ", "_")
    argv = [
        sys.executable, str(ROOT / "worker" / "pretrain.py"),
        "--model_name_or_path", case.model,
        "--dataset_dir", str(corpus),
        "--data_cache_dir", str(work / "cache"),
        "--finetuning_type", case.finetuning_type,
        "--block_size", str(case.block_size),
        "--per_device_train_batch_size", str(case.batch),
        "--max_steps", str(case.steps),
        "--learning_rate", "1e-4",
        "--logging_steps", "1",
        "--save_strategy", "no",
        "--validation_split_percentage", "0",
        "--do_train", "--use_cpu", "--report_to", "none",
        "--output_dir", str(out),
        *case.extra,
    ]  # fmt: skip
    t0 = time.time()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.time() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{case.name} failed:\n{(proc.stdout + proc.stderr)[-4000:]}")
    logs = [
        e
        for e in map(json.loads, (out / "events.jsonl").read_text().splitlines())
        if e["kind"] == "log"
    ]
    first, last = logs[0], logs[-1]  # the first log closes the (slow) first step
    dt = last["time"] - first["time"]
    steps = last["step"] - first["step"]
    return Result(case, (last["tokens_seen"] - first["tokens_seen"]) / dt, dt / steps, wall)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--skip-smollm2", action="store_true")
    ap.add_argument("--tiny-steps", type=int, default=60)
    ap.add_argument("--smollm2-steps", type=int, default=8)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="OMP_NUM_THREADS of each run (1: robust on a shared box; 0: torch's default)",
    )
    args = ap.parse_args()
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
    if args.threads > 0:
        env["OMP_NUM_THREADS"] = str(args.threads)
    else:
        env.pop("OMP_NUM_THREADS", None)

    assets = demo_assets.ensure_demo_assets(CACHE / "demo")
    lora = ["--trainable", "q_proj,v_proj", "--modules_to_save", ""]
    cases = [
        Case("tiny full", str(assets["model"]), "full", [], 64, 4, args.tiny_steps),
        Case("tiny LoRA", str(assets["model"]), "lora", lora, 64, 4, args.tiny_steps, "tiny full"),
        Case(
            "tiny LoRA + embeddings",
            str(assets["model"]),
            "lora",
            ["--trainable", "q_proj,v_proj", "--modules_to_save", "embed_tokens,lm_head"],
            64,
            4,
            args.tiny_steps,
            "tiny full",
        ),
    ]
    if not args.skip_smollm2:
        smollm2 = str(demo_assets.ensure_smollm2(CACHE))
        cases += [
            Case("SmolLM2-135M full", smollm2, "full", [], 128, 4, args.smollm2_steps),
            Case(
                "SmolLM2-135M LoRA",
                smollm2,
                "lora",
                lora,
                128,
                4,
                args.smollm2_steps,
                "SmolLM2-135M full",
            ),
        ]
    with tempfile.TemporaryDirectory(prefix="cpt-bench-") as tmp:
        results = {c.name: run_case(c, assets["corpus"], Path(tmp), env) for c in cases}

    load = os.getloadavg()
    print(
        f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"OMP_NUM_THREADS={env.get('OMP_NUM_THREADS', 'unset (torch default)')}, "
        f"load average after: {load[0]:.1f}\n"
    )
    print("| run | tokens/step | s/step | tokens/s | vs baseline | wall (s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results.values():
        c = r.case
        vs = "baseline"
        if c.baseline:
            vs = f"{r.tokens_per_second / results[c.baseline].tokens_per_second:.2f}x {c.baseline}"
        print(
            f"| {c.name} | {c.block_size * c.batch} | {r.seconds_per_step:.3f} | "
            f"{r.tokens_per_second:,.0f} | {vs} | {r.wall_s:.0f} |"
        )


if __name__ == "__main__":
    main()
