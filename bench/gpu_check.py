"""Everything GPU-specific, checked and measured in one call on a lent GPU machine.

Run it as ``bash bench/gpu_check.sh`` on the device (see docs/gpu-check.md for the wheels it
needs); it prints a table and writes ``$OUT/gpu_check.json``. Nothing here runs in CI: CI has no
GPU. Each check is independent, so one failure still leaves the others' numbers.

Checks:
  inventory   nvidia-smi as the worker parses it (worker.gpu) agrees with torch.cuda
  lora_bf16   pretrain.py, LoRA, bf16, one GPU: loss falls, tokens/s, peak memory, MFU in events
  full_bf16   the same with full weights (the seed's other approach)
  fp16        --fp16 is accepted on a GPU (it is refused on CPU)
  zero2       DeepSpeed ZeRO-2 full weights (skipped with a reason if deepspeed is missing)
  oom         an impossible micro-batch ends with status "oom" and the suggestion
  cancel      SIGTERM to the process group (worker.launcher) frees the GPU memory, and how fast
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: --smoke: the same plumbing on a CPU box (tiny model, a few steps, --use_cpu), to test the script.
SMOKE = "--smoke" in sys.argv
sys.path.insert(0, str(ROOT))

from worker import demo_assets, gpu, launcher  # noqa: E402


def nvidia_used_mb() -> int:
    if SMOKE:
        return 0
    out = subprocess.run(
        ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sum(int(x) for x in out.split())


def build_gpu_llama(out: Path, vocab_size: int) -> Path:
    """A ~300M-parameter Llama with random weights: big enough to load an H100 meaningfully."""
    from transformers import LlamaConfig, LlamaForCausalLM

    if (out / "config.json").exists():
        return out
    cfg = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=1024,
        intermediate_size=2816,
        num_hidden_layers=16,
        num_attention_heads=16,
        num_key_value_heads=16,
        max_position_embeddings=2048,
    )
    LlamaForCausalLM(cfg).save_pretrained(out)
    return out


def events(output_dir: Path) -> list[dict[str, Any]]:
    path = output_dir / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def pretrain_argv(model: Path, tokenizer: Path, corpus: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "1",
        "--master_addr", "127.0.0.1", "--master_port", str(launcher.free_port()),
        str(ROOT / "worker" / "pretrain.py"),
        "--model_name_or_path", str(model), "--tokenizer_name_or_path", str(tokenizer),
        "--dataset_dir", str(corpus), "--data_cache_dir", str(out.parent / "cache"),
        "--do_train", "--output_dir", str(out), "--overwrite_output_dir",
        "--logging_steps", "5", "--logging_first_step", "True", "--save_strategy", "no",
        "--report_to", "none", "--seed", "1", "--validation_split_percentage", "0.05",
        *extra, *(["--use_cpu", "--block_size", "64", "--per_device_train_batch_size", "2"] if SMOKE else []),
    ]  # fmt: skip


def train(
    name: str, base: list[str], work: Path, *extra: str, timeout: int = 240
) -> dict[str, Any]:
    out = work / name
    argv = base[:]  # model, tokenizer, corpus
    t0 = time.time()
    proc = subprocess.run(
        pretrain_argv(Path(argv[0]), Path(argv[1]), Path(argv[2]), out, *extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    evs = events(out)
    logs = [e for e in evs if e["kind"] == "log" and "loss" in e]
    end = next((e for e in reversed(evs) if e["kind"] == "end"), {})
    steady = logs[1:] or logs
    result = {
        "exit": proc.returncode,
        "wall_s": round(time.time() - t0, 1),
        "end": end.get("status"),
        "reason": end.get("reason"),
        "first_loss": logs[0]["loss"] if logs else None,
        "last_loss": logs[-1]["loss"] if logs else None,
        "tokens_per_second": round(
            sum(e.get("tokens_per_second") or 0 for e in steady) / max(len(steady), 1)
        ),
        "peak_memory_gb": max((e.get("peak_memory_gb") or 0 for e in logs), default=None),
        "mfu": max((e.get("mfu") or 0 for e in logs), default=None),
    }
    if proc.returncode != 0 and end.get("status") not in ("oom",):
        result["stderr_tail"] = proc.stderr[-1500:]
    return result


def check_cancel(base: list[str], work: Path) -> dict[str, Any]:
    out = work / "cancel"
    idle = nvidia_used_mb()
    argv = pretrain_argv(Path(base[0]), Path(base[1]), Path(base[2]), out, "--bf16", "--max_steps", "100000",
                         "--per_device_train_batch_size", "8", "--block_size", "1024",
                         "--finetuning_type", "full")  # fmt: skip
    proc = launcher.start(argv, work / "cancel.log", {**os.environ}, ROOT)
    deadline = time.time() + 180
    while time.time() < deadline and not any(e["kind"] == "log" for e in events(out)):
        time.sleep(0.5)
    busy = nvidia_used_mb()
    t0 = time.time()
    launcher.terminate(proc, grace=10)
    gone = time.time() - t0
    while nvidia_used_mb() > idle + 512 and time.time() - t0 < 30:
        time.sleep(0.1)
    freed = time.time() - t0
    end = next((e for e in reversed(events(out)) if e["kind"] == "end"), {})
    return {
        "idle_mb": idle,
        "training_mb": busy,
        "after_mb": nvidia_used_mb(),
        "process_group_gone_s": round(gone, 2),
        "memory_freed_s": round(freed, 2),
        "end": end.get("status"),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu-check-out")))
    ap.add_argument("--work", type=Path, default=Path("/tmp/cpt-gpu-check"))
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--smoke", action="store_true", help="CPU dry run of the plumbing")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    import torch

    results: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.version.cuda}
    gpus = gpu.list_gpus()
    results["inventory"] = {
        "nvidia_smi": [g.__dict__ for g in gpus]
        if gpus and hasattr(gpus[0], "__dict__")
        else [str(g) for g in gpus],
        "torch_count": torch.cuda.device_count(),
        "agree": len(gpus) == torch.cuda.device_count(),
    }
    assets = demo_assets.ensure_demo_assets(args.work / "demo")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(assets["tokenizer_extended"])
    model = assets["model"] if args.smoke else build_gpu_llama(args.work / "gpu-llama", len(tok))
    if args.smoke:
        args.steps = 3
        plans_skip = {"fp16", "oom", "zero2"}
    else:
        plans_skip = set()
    base = [str(model), str(assets["tokenizer_extended"]), str(assets["corpus"])]
    common = ["--max_steps", str(args.steps), "--block_size", "1024", "--per_device_train_batch_size", "8",
              "--gradient_accumulation_steps", "1", "--learning_rate", "3e-4", "--warmup_ratio", "0.05"]  # fmt: skip
    plans: dict[str, list[str]] = {
        "lora_bf16": [*common, "--bf16", "--finetuning_type", "lora", "--trainable", "q_proj,v_proj,k_proj,o_proj"],
        "full_bf16": [*common, "--bf16", "--finetuning_type", "full"],
        "fp16": ["--max_steps", "10", "--block_size", "512", "--per_device_train_batch_size", "8",
                 "--fp16", "--finetuning_type", "lora"],
        "zero2": [*common, "--bf16", "--finetuning_type", "full",
                  "--deepspeed", str(ROOT / "worker" / "ds_configs" / "ds_zero2_no_offload.json")],
        "oom": ["--max_steps", "3", "--block_size", "2048", "--per_device_train_batch_size", "1024",
                "--finetuning_type", "full"],
    }  # fmt: skip
    for name, extra in plans.items():
        if name in plans_skip:
            results[name] = {"skipped": "needs a GPU"}
            continue
        if name == "zero2":
            try:
                import deepspeed  # noqa: F401
            except ImportError as exc:
                results[name] = {"skipped": f"deepspeed not importable: {exc}"}
                continue
        try:
            results[name] = train(name, base, args.work, *extra)
        except Exception as exc:  # keep the other checks' numbers
            results[name] = {"error": repr(exc)}
        print(name, json.dumps(results[name])[:400], flush=True)
    try:
        results["cancel"] = check_cancel(base, args.work)
    except Exception as exc:
        results["cancel"] = {"error": repr(exc)}
    (args.out / "gpu_check.json").write_text(json.dumps(results, indent=2))
    print(
        "\n| check | end | tokens/s | peak GB | MFU | first→last loss |\n| --- | --- | --- | --- | --- | --- |"
    )
    for name in plans:
        r = results[name]
        print(f"| {name} | {r.get('end', r.get('skipped', r.get('error')))} | {r.get('tokens_per_second')} | "
              f"{r.get('peak_memory_gb')} | {r.get('mfu')} | {r.get('first_loss')}→{r.get('last_loss')} |")  # fmt: skip
    print("\ncancel:", json.dumps(results["cancel"]))
    print("inventory:", json.dumps(results["inventory"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
