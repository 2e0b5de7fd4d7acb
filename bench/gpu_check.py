"""Everything GPU-specific, checked and measured in one call on a GPU machine.

Run it as ``bash bench/gpu_check.sh`` on the device (see docs/gpu-check.md for the wheels it
needs); it prints a table and writes ``$OUT/gpu_check.json``. Nothing here runs in CI: CI has no
GPU. Each check is independent, so one failure still leaves the others' numbers.

Checks (a ~1B-parameter Llama-shaped model, random init, bf16, SDPA attention, packed blocks
of 2048 tokens, DeepSpeed ZeRO-2, one GPU):
  peak        the card's bf16 matmul peak, measured here (8192^3 GEMMs): the MFU denominator
  full_zero2  pretrain.py full weights: loss falls; tokens/s; MFU = 6*N*tokens/s / peak;
              peak memory against the launch form's estimate
  lora_zero2  the same with LoRA (goal: tokens/s >= 1.3x full)
  gpu_stats   worker.attempt.gpu (what the Workers page shows) read while full_zero2 trains agrees with
              torch: name, total memory, used memory >= the training's peak, utilisation > 0
  fp16        --fp16 is accepted on a GPU (it is refused on CPU)
  oom         an impossible micro-batch ends with status "oom" and the suggestion
  cancel      the panel's cancel (SIGUSR2 to every rank of the tree) frees the GPU memory, and how fast

``--smoke`` runs the same plumbing on a CPU (tiny model, 3 steps, no DeepSpeed, fp32 peak) so
``make test`` keeps this script working on boxes without a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: --smoke: the same plumbing on a CPU box (tiny model, a few steps, --use_cpu), to test the script.
SMOKE = "--smoke" in sys.argv
sys.path.insert(0, str(ROOT))

from worker import demo_assets  # noqa: E402
from worker.attempt import gpu, launcher, proctree  # noqa: E402


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


#: TinyLlama-1.1B's shape (GQA, 22 layers) with the demo tokenizer's vocabulary: ~0.97 B params.
LLAMA_1B = {
    "hidden_size": 2048,
    "intermediate_size": 5632,
    "num_hidden_layers": 22,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
    "max_position_embeddings": 2048,
}


def build_gpu_llama(out: Path, vocab_size: int) -> tuple[Path, dict[str, Any]]:
    """A ~1B-parameter Llama with random weights, saved in bf16 (built on the GPU: seconds)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=vocab_size, **LLAMA_1B)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    info = {
        "params": sum(p.numel() for p in model.parameters()),
        "attn_implementation": model.config._attn_implementation,
        "vocab": vocab_size,
        **LLAMA_1B,
    }
    if not (out / "config.json").exists():
        model.save_pretrained(out)
    del model
    torch.cuda.empty_cache()
    return out, info


def model_info(model_dir: Path) -> dict[str, Any]:
    """Parameter count and shape of the (small) smoke model."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    c = model.config
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "attn_implementation": c._attn_implementation,
        "vocab": c.vocab_size,
        "hidden_size": c.hidden_size,
        "intermediate_size": c.intermediate_size,
        "num_hidden_layers": c.num_hidden_layers,
    }


def matmul_peak_tflops() -> float:
    """The best sustained matmul rate here: bf16 8192^3 on the GPU (fp32 512^3 on CPU, smoke)."""
    import torch

    if SMOKE:
        n, dtype, dev, reps = 512, torch.float32, "cpu", 20
    else:
        n, dtype, dev, reps = 8192, torch.bfloat16, "cuda", 50
    a = torch.randn(n, n, dtype=dtype, device=dev)
    b = torch.randn(n, n, dtype=dtype, device=dev)
    best = 0.0
    for _ in range(3):
        for _ in range(3):
            a @ b  # warm-up (cuBLAS heuristics, clocks)
        if dev == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        if dev == "cuda":
            torch.cuda.synchronize()
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t0) / 1e12)
    del a, b
    if dev == "cuda":
        torch.cuda.empty_cache()
    return best


def memory_estimate_gb(
    model: Path, tokenizer: Path, vocab: int, corpus: Path, extra: list[str], smoke: bool
) -> tuple[float, dict[str, Any]]:
    """The launch form's estimate (backend/services/model_estimates.py) of one rank's peak memory
    for this plan, and its breakdown: the figure the panel shows, checked against
    ``torch.cuda.max_memory_allocated`` here. (That module needs pydantic only, which DeepSpeed
    brings; the rest of the backend is not imported.)"""
    from backend.services.model_estimates import model_estimate
    from cpt_contract.runconfig.schema import RunConfig

    def flag(name: str, default: str) -> str:
        return extra[extra.index(name) + 1] if name in extra else default

    method: dict[str, Any] = {"finetuning_type": flag("--finetuning_type", "lora")}
    if method["finetuning_type"] == "lora":
        method["trainable"] = flag("--trainable", "q_proj,v_proj")
    config = RunConfig.model_validate(
        {
            "model": {"model_name_or_path": str(model), "tokenizer_name_or_path": str(tokenizer)},
            "data": {"dataset_dir": str(corpus), "block_size": int(flag("--block_size", "1024"))},
            "method": method,
            "training": {
                "per_device_train_batch_size": int(flag("--per_device_train_batch_size", "1")),
                "gradient_accumulation_steps": int(flag("--gradient_accumulation_steps", "1")),
                "precision": "bf16" if "--bf16" in extra else "fp32",
                # pretrain.py's own default (the plans pass no --gradient_checkpointing).
                "gradient_checkpointing": "--gradient_checkpointing" in extra,
            },
            "launch": {"deepspeed": "none" if smoke else "zero2"},
        }
    )
    est = model_estimate(config, vocab)
    if est.memory is None or est.params is None:
        return -1.0, {"note": est.note}
    breakdown = {k: round(getattr(est.memory, k) / 2**30, 2)
                 for k in ("weights", "gradients", "optimizer", "activations")}  # fmt: skip
    breakdown["params_total"], breakdown["params_trainable"] = (
        est.params.total,
        est.params.trainable,
    )
    return est.memory.total / 2**30, breakdown


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
        *extra, *(["--use_cpu"] if SMOKE else []),
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
    start = next((e for e in evs if e["kind"] == "start"), {})
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
        "total_params": start.get("total_params"),
        "trainable_params": start.get("trainable_params"),
    }
    if proc.returncode != 0 and end.get("status") not in ("oom",):
        result["stderr_tail"] = proc.stderr[-1500:]
    return result


def check_cancel(base: list[str], work: Path, block: int, mb: int) -> dict[str, Any]:
    out = work / "cancel"
    idle = nvidia_used_mb()
    argv = pretrain_argv(Path(base[0]), Path(base[1]), Path(base[2]), out, "--max_steps", "100000",
                         *(["--bf16"] if not SMOKE else []),
                         "--per_device_train_batch_size", str(mb), "--block_size", str(block),
                         "--finetuning_type", "lora")  # fmt: skip
    proc = launcher.start(argv, work / "cancel.log", {**os.environ}, ROOT)
    tree = proctree.ProcessTree(proc.pid)
    deadline = time.time() + 180
    while time.time() < deadline and not any(e["kind"] == "log" for e in events(out)):
        time.sleep(0.5)
    busy = nvidia_used_mb()
    t0 = time.time()
    tree.refresh()
    tree.stop(10, signal.SIGUSR2)  # the panel's cancel: every rank, whatever its session
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


def sample_gpus(stop: threading.Event, out: list[list[dict[str, Any]]]) -> None:
    """What the worker's heartbeat would report (worker.attempt.gpu), once a second."""
    while not stop.wait(1.0):
        out.append([g.to_dict() for g in gpu.list_gpus()])


def check_gpu_stats(samples: list[list[dict[str, Any]]], peak_gb: float | None) -> dict[str, Any]:
    import torch

    if SMOKE:
        return {"skipped": "no GPU", "samples": len(samples)}
    props = torch.cuda.get_device_properties(0)
    first = [g for g in (samples[0] if samples else []) if g["index"] == 0]
    used = max((g["memory_used_mb"] for s in samples for g in s if g["index"] == 0), default=0)
    util = max((g["utilization_pct"] for s in samples for g in s if g["index"] == 0), default=0)
    total = first[0]["memory_total_mb"] if first else 0
    res = {
        "samples": len(samples),
        "name": first[0]["name"] if first else None,
        "torch_name": props.name,
        "memory_total_mb": total,
        "torch_total_mb": props.total_memory // 2**20,
        "max_used_mb": used,
        "training_peak_mb": round((peak_gb or 0) * 1024),
        "max_utilization_pct": util,
    }
    res["ok"] = bool(
        first
        and props.name in first[0]["name"] + " " + props.name
        and abs(total - res["torch_total_mb"]) <= 0.03 * res["torch_total_mb"]
        and used >= 0.9 * res["training_peak_mb"]
        and util > 0
    )
    return res


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu-check-out")))
    ap.add_argument("--work", type=Path, default=Path("/tmp/cpt-gpu-check"))
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--micro-batch", type=int, default=8)
    ap.add_argument("--smoke", action="store_true", help="CPU dry run of the plumbing")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    import torch

    t_start = time.time()
    results: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.version.cuda}
    gpus = gpu.list_gpus()
    results["inventory"] = {
        "nvidia_smi": [g.to_dict() for g in gpus],
        "torch_count": torch.cuda.device_count(),
        "agree": len(gpus) == torch.cuda.device_count(),
    }
    results["peak_tflops"] = round(matmul_peak_tflops(), 1)
    print("matmul peak:", results["peak_tflops"], "TFLOP/s", flush=True)
    assets = demo_assets.ensure_demo_assets(args.work / "demo")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(assets["tokenizer_extended"])
    if args.smoke:
        model, info = assets["model"], model_info(assets["model"])
        args.steps, block, mb = 3, 64, 2
    else:
        model, info = build_gpu_llama(args.work / "gpu-llama-1b", len(tok))
        block, mb = 2048, args.micro_batch
    results["model"] = info
    print("model:", json.dumps(info), flush=True)
    base = [str(model), str(assets["tokenizer_extended"]), str(assets["corpus"])]
    ds = ["--deepspeed", str(ROOT / "worker" / "ds_configs" / "ds_zero2_no_offload.json")]
    if args.smoke:
        ds = []  # DeepSpeed's CPU path is tested elsewhere; this keeps make test short
    common = ["--max_steps", str(args.steps), "--block_size", str(block), "--packing", "eos",
              "--per_device_train_batch_size", str(mb), "--gradient_accumulation_steps", "1",
              "--learning_rate", "3e-4", "--warmup_ratio", "0.05",
              *(["--bf16"] if not args.smoke else []), *ds]  # fmt: skip
    plans: dict[str, list[str]] = {
        "full_zero2": [*common, "--finetuning_type", "full"],
        "lora_zero2": [*common, "--finetuning_type", "lora", "--trainable", "q_proj,v_proj,k_proj,o_proj"],
        "fp16": ["--max_steps", "5", "--block_size", "512", "--per_device_train_batch_size", "4",
                 "--fp16", "--finetuning_type", "lora"],
        "oom": ["--max_steps", "3", "--block_size", "2048", "--per_device_train_batch_size", "1024",
                "--finetuning_type", "full"],
    }  # fmt: skip
    skip = {"fp16", "oom"} if args.smoke else set()
    for name, extra in plans.items():
        if name in skip:
            results[name] = {"skipped": "needs a GPU"}
            continue
        samples: list[list[dict[str, Any]]] = []
        stop = threading.Event()
        sampler = threading.Thread(target=sample_gpus, args=(stop, samples), daemon=True)
        sampler.start()
        try:
            r = results[name] = train(name, base, args.work, *extra)
        except Exception as exc:  # keep the other checks' numbers
            r = results[name] = {"error": repr(exc)}
        finally:
            stop.set()
            sampler.join()
        if name in ("full_zero2", "lora_zero2") and "error" not in r:
            tps = r.get("tokens_per_second") or 0
            r["mfu_measured_peak"] = round(
                6 * info["params"] * tps / (results["peak_tflops"] * 1e12), 4
            )
            try:
                estimate, breakdown = memory_estimate_gb(
                    model, assets["tokenizer_extended"], len(tok), assets["corpus"], extra,
                    args.smoke,
                )  # fmt: skip
                r["memory_estimate_gb"], r["memory_estimate"] = round(estimate, 2), breakdown
            except Exception as exc:  # keep the check's own numbers
                r["memory_estimate"] = {"error": repr(exc)}
            if name == "full_zero2":
                results["gpu_stats"] = check_gpu_stats(samples, r.get("peak_memory_gb"))
        print(name, json.dumps(results[name])[:600], flush=True)
    try:
        results["cancel"] = check_cancel(base, args.work, block, mb)
    except Exception as exc:
        results["cancel"] = {"error": repr(exc)}
    full, lora = results["full_zero2"], results["lora_zero2"]
    if full.get("tokens_per_second") and lora.get("tokens_per_second"):
        results["lora_over_full"] = round(lora["tokens_per_second"] / full["tokens_per_second"], 2)
    results["wall_s"] = round(time.time() - t_start, 1)
    (args.out / "gpu_check.json").write_text(json.dumps(results, indent=2))
    print(f"\nmodel: {info['params'] / 1e9:.2f} B params, attention {info['attn_implementation']}, "
          f"blocks of {block}, micro-batch {mb}; matmul peak {results['peak_tflops']} TFLOP/s")  # fmt: skip
    print(
        "\n| check | end | tokens/s | MFU (measured peak) | peak GB | estimate GB | first->last loss |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in plans:
        r = results[name]
        print(f"| {name} | {r.get('end', r.get('skipped', r.get('error')))} | {r.get('tokens_per_second')} | "
              f"{r.get('mfu_measured_peak')} | {r.get('peak_memory_gb')} | {r.get('memory_estimate_gb')} | "
              f"{r.get('first_loss')}->{r.get('last_loss')} |")  # fmt: skip
    print("\nLoRA / full tokens/s:", results.get("lora_over_full"), "(goal >= 1.3)")
    print("gpu_stats:", json.dumps(results.get("gpu_stats")))
    print("cancel:", json.dumps(results["cancel"]))
    print("inventory:", json.dumps(results["inventory"]))
    print("wall:", results["wall_s"], "s")
    ok = all(results[n].get("end") == "succeeded" for n in ("full_zero2", "lora_zero2"))
    if args.smoke:
        ok = ok and results["cancel"].get("end") == "cancelled"
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
