"""The argv is derived from the schema: every field reaches it, and pretrain.py accepts every flag.

Adding a training flag is one schema field; this test then fails until ``NON_DEFAULT`` names a
value for it, so the new flag is proved to reach the script and to parse there.
"""

from __future__ import annotations

import inspect
import itertools
import json
import os
from typing import Any

import pytest

from cpt_contract.runconfig.argv import PANEL_FLAGS, LaunchContext, pretrain_args, schema_flags
from cpt_contract.runconfig.schema import RunConfig

#: A valid value that differs from the default, for every field that becomes a flag.
NON_DEFAULT: dict[str, dict[str, Any]] = {
    "model": {
        "model_name_or_path": "/models/base",
        "tokenizer_name_or_path": "/models/tok",
        "model_type": "unigram",
        "config_name": "/models/base",
        "config_overrides": "hidden_size=64",
        "torch_dtype": "float32",
        "new_embeddings_init": "mean_resizing",
        "use_fast_tokenizer": False,
        "model_revision": "v2",
    },
    "data": {
        "dataset_dir": "/data/kn",
        "train_file": "/data/kn/a.txt",
        "validation_file": "/data/kn-heldout.txt",
        "validation_split_percentage": 0.1,
        "block_size": 128,
        "max_train_samples": 100,
        "max_eval_samples": 10,
        "eval_max_characters": 5000,
        "txt_documents": "blank_line",
        "streaming": True,
        "keep_linebreaks": False,
        "preprocessing_num_workers": 2,
        "overwrite_cache": True,
        "packing": "classic",
        "text_column": "content",
        "data_sources": [
            {"path": "/data/en-replay", "weight": 0.25, "name": "en", "role": "replay"}
        ],
        "replay_share": 0.2,
        "eval_sets": {
            "kn": "/data/kn-heldout.txt",
            "en": {"path": "/data/en-heldout.txt", "role": "retain", "max_documents": 8},
            "zh": {"path": "/data/zh-heldout.txt", "max_characters": 900},
        },
    },
    "method": {
        "finetuning_type": "full",
        "trainable": "q_proj",
        "lora_rank": 4,
        "lora_alpha": 16.0,
        "lora_dropout": 0.1,
        "modules_to_save": "lm_head",
        "peft_path": "/models/adapter",
    },
    "training": {
        "num_train_epochs": 2.0,
        "max_steps": 7,
        "per_device_train_batch_size": 2,
        "per_device_eval_batch_size": 3,
        "gradient_accumulation_steps": 2,
        "learning_rate": 1e-3,
        "lr_scheduler_type": "linear",
        "warmup_ratio": 0.1,
        "weight_decay": 0.0,
        "max_grad_norm": 0.5,
        "precision": "fp32",
        "gradient_checkpointing": False,
        "logging_steps": 3,
        "save_steps": 5,
        "save_total_limit": 2,
        "report_to": ["tensorboard", "mlflow"],
        "eval_steps": 4,
        "eval_at_start": False,
        "eval_prompts": {"kn": ["ಕನ್ನಡ"], "en": ["The capital of"]},
        "sample_max_new_tokens": 16,
        "seed": 7,
        "ddp_timeout": 600,
        "debug_mode": True,
        "divergence_factor": 3.0,
        "divergence_logs": 4,
        # The run's own method (lora or full): 3 + 4 steps, the max_steps above.
        "stages": [{"max_steps": 3, "learning_rate": 1e-3}, {"max_steps": 4, "name": "two"}],
    },
}
CTX = LaunchContext(output_dir="/runs/r1/output", data_cache_dir="/cache", use_cpu=True)


def _flag_fields() -> list[tuple[str, str, Any]]:
    fields = []
    for section, model in RunConfig.model_fields.items():
        cls = model.annotation
        assert isinstance(cls, type)
        for name, info in cls.model_fields.items():  # type: ignore[attr-defined]
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            if extra.get("argv") != "none":
                fields.append((section, name, extra))
    return fields


def test_every_flag_field_has_a_test_value() -> None:
    missing = [f"{s}.{n}" for s, n, _ in _flag_fields() if n not in NON_DEFAULT.get(s, {})]
    assert not missing, f"add a non-default value for {missing} to NON_DEFAULT"


def _args_for(section: str, name: str | None = None, value: Any = None) -> list[str]:
    override: dict[str, Any] = {
        "model": {"model_name_or_path": "/m"},
        "data": {"dataset_dir": "/d"},
    }
    if name is not None:
        override.setdefault(section, {})[name] = value
    if name == "streaming":
        override["training"] = {"max_steps": 5}
    if name == "replay_share":  # a share of the replay source's tokens needs one
        override["data"]["data_sources"] = [{"path": "/r", "role": "replay"}]
    if name == "stages":
        override["launch"] = {"deepspeed": "none"}  # a staged run refuses DeepSpeed
    return schema_flags(RunConfig.model_validate(override))


@pytest.mark.parametrize(
    ("section", "name"), [(s, n) for s, n, _ in _flag_fields()], ids=lambda v: str(v)
)
def test_every_schema_field_reaches_the_argv(section: str, name: str) -> None:
    value = NON_DEFAULT[section][name]
    baseline = _args_for(section)
    args = _args_for(section, name, value)
    assert args != baseline, f"{section}.{name}={value!r} changed nothing in the argv"
    if name == "precision" or isinstance(value, bool):
        return  # a choice mapped to its own flags, or a switch whose other side is no flag
    assert any(a.startswith(f"--{name}=") for a in args), args  # the value glued to its flag


def test_full_weight_runs_get_no_lora_flags() -> None:
    cfg = RunConfig.model_validate(
        {"model": {"model_name_or_path": "/m"}, "data": {"dataset_dir": "/d"}}
        | {"method": {"finetuning_type": "full"}}
    )
    assert "--lora_rank" not in schema_flags(cfg)


def _all_fields_config(**changes: Any) -> RunConfig:
    config = {s: dict(v) for s, v in NON_DEFAULT.items()}
    config["method"]["finetuning_type"] = "lora"  # so LoRA's own flags are in the argv too
    config["training"].update(changes)
    config["launch"] = {"deepspeed": "none"}  # training.stages refuses DeepSpeed
    return RunConfig.model_validate(config)


def test_pretrain_parser_accepts_every_flag() -> None:
    """Parse the whole argv (every field set, plus the panel's and the worker's flags) with
    pretrain.py's own parser, and check each value arrived where the schema says."""
    from worker.training.arguments import parse_args

    config = _all_fields_config(precision="bf16")
    args = pretrain_args(config, CTX)
    model_args, data_args, training_args = parse_args(args)
    parsed: dict[str, Any] = {
        **vars(model_args),
        **vars(data_args),
        **{k: getattr(training_args, k) for k in dir(training_args) if not k.startswith("_")},
    }
    for values in NON_DEFAULT.values():
        for name, value in values.items():
            if name in {"precision", "warmup_ratio", "finetuning_type"}:
                continue  # mapped by the script (--bf16; warmup_ratio → warmup_steps)
            got = parsed[name]
            if name in {"data_sources", "eval_sets", "eval_prompts", "stages"}:
                got = json.loads(got)  # structured values travel as one JSON argument
            if name == "eval_sets":  # a bare path is short for {"path": ...}
                value = {k: {"path": v} if isinstance(v, str) else v for k, v in value.items()}
            assert got == value or str(got) == str(value), f"--{name}: {got!r} != {value!r}"
    assert training_args.bf16 is True
    flags = [a.split("=", 1)[0] for a in args if a.startswith("--")]
    for flag in itertools.chain(PANEL_FLAGS, ["--output_dir", "--data_cache_dir", "--use_cpu"]):
        if flag.startswith("--"):
            assert flag in flags


#: A valid value for each flag ``training.extra_args`` allows (the parser proves it is real).
EXTRA_VALUES: dict[str, str | None] = {
    "--adam_beta1": "0.8",
    "--adam_beta2": "0.95",
    "--adam_epsilon": "1e-6",
    "--optim": "adamw_torch",
    "--optim_args": "foo=1",
    "--warmup_steps": "3",
    "--label_smoothing_factor": "0.1",
    "--neftune_noise_alpha": "5",
    "--eval_accumulation_steps": "2",
    "--eval_delay": "1",
    "--dataloader_num_workers": "0",
    "--dataloader_pin_memory": "False",
    "--dataloader_drop_last": "True",
    "--dataloader_persistent_workers": "False",
    "--data_seed": "3",
    "--full_determinism": "True",
    "--tf32": "False",
    "--torch_compile": "False",
    "--torch_empty_cache_steps": "10",
    "--ddp_bucket_cap_mb": "25",
    "--ddp_broadcast_buffers": "False",
    "--log_level": "warning",
    "--log_level_replica": "error",
    "--disable_tqdm": "True",
    "--skip_memory_metrics": "False",
    "--save_only_model": "True",
    "--average_tokens_across_devices": "False",
    "--include_num_input_tokens_seen": "True",
}


def test_every_allowed_extra_flag_is_a_scalar_flag_of_pretrain() -> None:
    """Each flag ``extra_args`` allows parses in pretrain.py, takes no path, and is not one the
    schema, the panel or the worker sets (so it can move nothing outside the allowed roots)."""
    from cpt_contract.runconfig.extra_args import allowed_flags
    from worker.training.arguments import parse_args

    allowed = allowed_flags()
    assert set(EXTRA_VALUES) >= allowed, f"add a test value for {allowed - set(EXTRA_VALUES)}"
    base = pretrain_args(_all_fields_config(), CTX)
    flags_set = {a.split("=")[0] for a in base if a.startswith("--")}
    assert not allowed & flags_set, allowed & flags_set
    for flag in sorted(allowed):
        value = EXTRA_VALUES[flag]
        config = _all_fields_config(extra_args=[flag] if value is None else [flag, value])
        _m, _d, training_args = parse_args(pretrain_args(config, CTX))
        assert not isinstance(getattr(training_args, flag[2:]), os.PathLike), flag
    # The dangerous ones of the attack: refused by the schema, not passed on.
    for flag in ("--output_dir", "--dataset_dir", "--deepspeed", "--logging_dir", "--do_train"):
        with pytest.raises(ValueError, match=flag):
            _all_fields_config(extra_args=[flag, "/anywhere"])


def test_the_scripts_own_defaults_equal_the_schemas() -> None:
    """Every argument ``worker/training/arguments.py`` declares itself (not those it inherits
    from ``TrainingArguments``, whose defaults the panel always overrides with the schema's)
    has the schema's default: the script run by hand behaves as the panel's form says."""
    import dataclasses

    from worker.training.arguments import DataTrainingArguments, ModelArguments, PretrainArguments

    own: dict[str, Any] = {}
    for cls in (ModelArguments, DataTrainingArguments, PretrainArguments):
        declared = inspect.get_annotations(cls)
        for f in dataclasses.fields(cls):
            if f.name in declared:
                own[f.name] = (
                    f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
                )
    compared = []
    for section in RunConfig.model_fields.values():
        cls = section.annotation
        assert isinstance(cls, type)
        for name, info in cls.model_fields.items():  # type: ignore[attr-defined]
            if name in own:
                compared.append(name)
                assert info.get_default(call_default_factory=True) == own[name], name
    assert len(compared) >= 30, compared
