"""Checkpoints: which are complete, which to resume from, and whether the process count matches."""

from __future__ import annotations

import contextlib
import json
import logging
import re
from pathlib import Path
from typing import Any

from worker.training.arguments import PretrainArguments
from worker.training.failures import InputError

logger = logging.getLogger("pretrain")

RUN_INFO = "cpt_run.json"  # written into each checkpoint once it is complete


def _step_of(path: Path) -> int:
    m = re.fullmatch(r"checkpoint-(\d+)", path.name)
    return int(m.group(1)) if m else -1


def is_complete_checkpoint(path: Path, require_run_info: bool = False) -> bool:
    """trainer_state.json is written after the weights; our RUN_INFO after everything else."""
    if not (path / "trainer_state.json").is_file():
        return False
    return (path / RUN_INFO).is_file() or not require_run_info


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete checkpoint-N (one cut short by a kill is skipped)."""
    found = [p for p in output_dir.glob("checkpoint-*") if p.is_dir() and _step_of(p) >= 0]
    # Once this script has written checkpoints here, only those it finished count.
    ours = any((p / RUN_INFO).is_file() for p in found)
    for path in sorted(found, key=_step_of, reverse=True):
        if is_complete_checkpoint(path, require_run_info=ours):
            return path
    return None


def resolve_resume(value: str | None, output_dir: Path) -> Path | None:
    """``last`` | ``checkpoint-N`` (in output_dir) | a path → a checkpoint dir, or None."""
    if not value or value.lower() in ("false", "none", "no"):
        return None
    if value.lower() in ("last", "latest", "true"):
        found = latest_checkpoint(output_dir)
        if found is None:
            logger.warning(
                "--resume_from_checkpoint %s: no checkpoint in %s yet; starting fresh",
                value,
                output_dir,
            )
        return found
    for candidate in (output_dir / value, Path(value)):
        if candidate.is_dir():
            if not is_complete_checkpoint(candidate):
                raise InputError(
                    f"--resume_from_checkpoint {value}: {candidate} is incomplete (no trainer_state.json)"
                )
            return candidate.resolve()
    raise InputError(
        f"--resume_from_checkpoint {value}: no such checkpoint (looked in {output_dir} and as a path)"
    )


def checkpoint_world_size(path: Path) -> int | None:
    """The process count a checkpoint was written with."""
    info = path / RUN_INFO
    if info.is_file():
        with contextlib.suppress(ValueError, KeyError, OSError):
            return int(json.loads(info.read_text())["world_size"])
    shards = list(path.glob("global_step*/*optim_states.pt"))
    if shards:
        return len(shards)
    rng = list(path.glob("rng_state_*.pth"))
    if rng:
        return len(rng)
    return 1 if (path / "rng_state.pth").is_file() else None


def check_output_dir(args: PretrainArguments, resume: Path | None) -> None:
    out = Path(str(args.output_dir))
    if resume is None and not args.overwrite_output_dir and latest_checkpoint(out) is not None:
        raise InputError(
            f"--output_dir {out} already holds checkpoints: pass --resume_from_checkpoint last "
            "to continue, or --overwrite_output_dir to start over"
        )


def check_resume_world_size(resume: Path, world_size: int) -> None:
    saved = checkpoint_world_size(resume)
    if saved is not None and saved != world_size:
        raise InputError(
            f"--resume_from_checkpoint {resume.name}: it was written by {saved} processes but this "
            f"run has {world_size}; resume with the same --nnodes x --nproc_per_node ({saved})"
        )


def write_run_info(path: Path, args: Any, step: int, stage: int | None = None) -> None:
    """Marks a checkpoint complete and records what resuming it must match."""
    (path / RUN_INFO).write_text(
        json.dumps(
            {
                "world_size": args.world_size,
                "per_device_train_batch_size": args.per_device_train_batch_size,
                "gradient_accumulation_steps": args.gradient_accumulation_steps,
                "finetuning_type": args.finetuning_type,
                "step": step,
                # A staged run: the stage this checkpoint was written in (the step decides it).
                "stage": stage,
            }
        )
    )
