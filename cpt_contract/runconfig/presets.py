"""Named starting points for a run config; ``POST /api/runs`` deep-merges ``config`` over one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cpt_contract.runconfig.schema import deep_merge

#: The seed's example command, field for field (paths left for the user).
SEED_LORA: dict[str, Any] = {
    "model": {"torch_dtype": "float16"},
    "data": {
        "validation_split_percentage": 0.001,
        "block_size": 512,
        "preprocessing_num_workers": 8,
    },
    "method": {
        "finetuning_type": "lora",
        "lora_rank": 8,
        "lora_alpha": 32.0,
        "lora_dropout": 0.05,
        "trainable": "q_proj,v_proj,k_proj,o_proj,gate_proj,down_proj,up_proj",
        "modules_to_save": "embed_tokens,lm_head",
    },
    "training": {
        "num_train_epochs": 1,
        "per_device_train_batch_size": 1,
        "per_device_eval_batch_size": 1,
        "gradient_accumulation_steps": 8,
        "learning_rate": 2e-4,
        "lr_scheduler_type": "cosine",
        "warmup_ratio": 0.05,
        "weight_decay": 0.01,
        "precision": "fp16",
        "gradient_checkpointing": True,
        "logging_steps": 10,
        "save_steps": 200,
        "save_total_limit": 3,
        "ddp_timeout": 30000,
    },
    "launch": {"deepspeed": "zero2", "nnodes": 1, "nproc_per_node": 1},
}

FULL: dict[str, Any] = deep_merge(
    SEED_LORA,
    {
        "model": {"torch_dtype": "bfloat16"},
        "method": {"finetuning_type": "full"},
        "training": {"learning_rate": 2e-5, "precision": "bf16"},
        "launch": {"deepspeed": "zero3"},
    },
)

PRESET_LABELS: dict[str, str] = {
    "seed-lora": "Seed LoRA",
    "full": "Full weight",
    "tiny-demo": "Tiny demo",
}


def tiny_demo(demo_dir: Path) -> dict[str, Any]:
    """A run that finishes in seconds on a CPU, on assets the panel builds on first start."""
    return {
        "model": {
            "model_name_or_path": str(demo_dir / "tiny-llama"),
            "tokenizer_name_or_path": str(demo_dir / "tokenizer-extended"),
            "torch_dtype": "float32",
        },
        "data": {
            "dataset_dir": str(demo_dir / "corpus"),
            "block_size": 64,
            "validation_split_percentage": 0.1,
        },
        "method": {
            "finetuning_type": "lora",
            "trainable": "q_proj,v_proj",
            "modules_to_save": "embed_tokens,lm_head",
            "lora_rank": 8,
            "lora_alpha": 32.0,
        },
        "training": {
            "max_steps": 40,
            "per_device_train_batch_size": 4,
            "gradient_accumulation_steps": 1,
            "learning_rate": 2e-3,
            "warmup_ratio": 0.05,
            "precision": "fp32",
            "gradient_checkpointing": False,
            "logging_steps": 2,
            "save_steps": 20,
            "eval_steps": 20,
            "save_total_limit": 2,
        },
        "launch": {"deepspeed": "none", "nproc_per_node": 1},
    }


def preset_config(name: str, demo_dir: Path) -> dict[str, Any]:
    """The preset's config dict. Raises KeyError for an unknown name."""
    if name == "seed-lora":
        return SEED_LORA
    if name == "full":
        return FULL
    if name == "tiny-demo":
        return tiny_demo(demo_dir)
    raise KeyError(name)
