"""The run-config schema, presets and the pure argv builder (no processes)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import ValidationError

from cpt_contract.runconfig.argv import (
    LaunchContext,
    display_command,
    pretrain_args,
    schema_flags,
    torchrun_argv,
)
from cpt_contract.runconfig.presets import PRESET_LABELS, preset_config
from cpt_contract.runconfig.schema import RunConfig, deep_merge

# The seed's example command, flag for flag (values that are paths replaced by ours).
SEED_FLAGS = {
    "--validation_split_percentage": "0.001",
    "--per_device_train_batch_size": "1",
    "--per_device_eval_batch_size": "1",
    "--num_train_epochs": "1.0",
    "--lr_scheduler_type": "cosine",
    "--learning_rate": "0.0002",
    "--warmup_ratio": "0.05",
    "--weight_decay": "0.01",
    "--logging_strategy": "steps",
    "--logging_steps": "10",
    "--save_strategy": "steps",
    "--save_total_limit": "3",
    "--save_steps": "200",
    "--gradient_accumulation_steps": "8",
    "--preprocessing_num_workers": "8",
    "--block_size": "512",
    "--ddp_timeout": "30000",
    "--logging_first_step": "True",
    "--lora_rank": "8",
    "--lora_alpha": "32.0",
    "--trainable": "q_proj,v_proj,k_proj,o_proj,gate_proj,down_proj,up_proj",
    "--modules_to_save": "embed_tokens,lm_head",
    "--lora_dropout": "0.05",
    "--torch_dtype": "float16",
    "--ddp_find_unused_parameters": "False",
}
SEED_SWITCHES = ["--do_train", "--fp16", "--overwrite_output_dir", "--gradient_checkpointing"]

CTX = LaunchContext(
    output_dir="/runs/r1/output", data_cache_dir="/cache", deepspeed_config="/runs/r1/ds.json"
)


def seed_config(**override: object) -> RunConfig:
    paths = {"model": {"model_name_or_path": "/m"}, "data": {"dataset_dir": "/d"}}
    return RunConfig.model_validate(
        deep_merge(deep_merge(preset_config("seed-lora", Path("/demo")), paths), dict(override))
    )


def as_pairs(args: list[str]) -> dict[str, str]:
    """Flag → value, for ``--flag value`` (the panel's and the worker's flags) and
    ``--flag=value`` (every value of the schema, glued to its flag)."""
    pairs = {
        a: b for a, b in itertools.pairwise(args) if a.startswith("--") and not b.startswith("--")
    }
    pairs.update(a.split("=", 1) for a in args if a.startswith("--") and "=" in a)  # type: ignore[misc]
    return pairs


def test_seed_preset_reproduces_the_seed_example_command() -> None:
    args = pretrain_args(seed_config(), CTX)
    pairs = as_pairs(args)
    for flag, value in SEED_FLAGS.items():
        assert pairs.get(flag) == value, f"{flag}: {pairs.get(flag)!r} != {value!r}"
    for switch in SEED_SWITCHES:
        assert switch in args
    assert pairs["--deepspeed"] == "/runs/r1/ds.json"


def test_torchrun_prefix_and_no_shell() -> None:
    argv = torchrun_argv(seed_config(launch={"nproc_per_node": 2}), CTX)
    assert argv[:3] == ["python", "-m", "torch.distributed.run"]
    assert argv[argv.index("--nproc_per_node") + 1] == "2"
    assert "worker/pretrain.py" in argv
    # Every item is one argv element: nothing relies on a shell splitting words.
    assert all(isinstance(a, str) for a in argv)
    assert display_command(argv).startswith("torchrun --nnodes 1 --nproc_per_node 2")


def test_values_with_spaces_stay_single_arguments() -> None:
    argv = torchrun_argv(
        seed_config(model={"model_name_or_path": "/models/my model; rm -rf /"}), CTX
    )
    assert "--model_name_or_path=/models/my model; rm -rf /" in argv
    assert "'--model_name_or_path=/models/my model; rm -rf /'" in display_command(argv)


def test_modules_to_save_can_be_switched_off() -> None:
    """Empty means no module trained in full (LoRA adapters only): an explicit empty flag, since
    leaving it out would give the script's default (embed_tokens,lm_head); null, as configs
    saved before said, is that default."""
    args = pretrain_args(seed_config(method={"modules_to_save": ""}), CTX)
    assert "--modules_to_save=" in args  # glued to its flag: an empty value, not a missing one
    assert " --modules_to_save= " in display_command(args)
    old = seed_config(method={"modules_to_save": None})
    assert old.method.modules_to_save == "embed_tokens,lm_head"
    with pytest.raises(ValidationError, match="modules_to_save"):
        seed_config(method={"modules_to_save": "lm_head,"})


def test_cpu_and_full_weight_flags() -> None:
    cfg = seed_config(method={"finetuning_type": "full"}, training={"precision": "bf16"})
    args = pretrain_args(cfg, LaunchContext(output_dir="/o", data_cache_dir="/c", use_cpu=True))
    assert "--use_cpu" in args and "--bf16" in args and "--fp16" not in args
    assert "--lora_rank" not in args  # LoRA flags only for LoRA
    assert "--deepspeed" not in args  # no DeepSpeed file given


def test_multinode_uses_c10d_rendezvous() -> None:
    cfg = seed_config(launch={"nnodes": 2, "rdzv_endpoint": "node0:29400"})
    argv = torchrun_argv(
        cfg, LaunchContext(output_dir="/o", data_cache_dir="/c", run_id="r1", node_rank=1)
    )
    pairs = as_pairs(argv)
    assert pairs["--rdzv_backend"] == "c10d" and pairs["--rdzv_endpoint"] == "node0:29400"
    assert pairs["--nnodes"] == "2" and pairs["--rdzv_id"] == "r1"


@pytest.mark.parametrize(
    ("override", "loc"),
    [
        ({"training": {"learning_rate": -1}}, ("training", "learning_rate")),
        ({"method": {"lora_rank": 0}}, ("method", "lora_rank")),
        ({"training": {"precison": "bf16"}}, ("training", "precison")),
        ({"launch": {"nproc_per_node": 0}}, ("launch", "nproc_per_node")),
    ],
)
def test_bad_values_name_their_field(override: dict[str, object], loc: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError) as err:
        seed_config(**override)
    assert tuple(err.value.errors()[0]["loc"]) == loc


def test_every_preset_validates_once_paths_are_set() -> None:
    for name in PRESET_LABELS:
        cfg = deep_merge(
            preset_config(name, Path("/demo")),
            {"data": {"dataset_dir": "/d"}, "model": {"model_name_or_path": "/m"}},
        )
        RunConfig.model_validate(cfg)


def test_json_schema_carries_form_hints() -> None:
    schema = RunConfig.model_json_schema()
    model = schema["$defs"]["ModelSection"]["properties"]
    assert model["model_name_or_path"]["picker"] == "model"
    assert model["config_overrides"]["advanced"] is True


_BASE = {"model": {"model_name_or_path": "/m"}, "data": {"dataset_dir": "/d"}}


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--output_dir", "/anywhere", "--dataset_dir", "/anywhere"], "--output_dir"),
        (["--dataset_dir", "/anywhere"], "--dataset_dir"),
        (["--output_dir=/anywhere"], "--output_dir"),
        (["--output_d", "/anywhere"], "--output_d"),  # argparse would expand the prefix
        (["--resume_from_checkpoint", "/x"], "--resume_from_checkpoint"),
        (["--logging_dir", "/x"], "--logging_dir"),
        (["--hub_model_id", "x"], "--hub_model_id"),
        (["--learning_rate", "1"], "--learning_rate"),  # a schema field: set it there
        (["--bf16"], "--bf16"),  # what training.precision maps to
        (["--eval_strategy", "no"], "--eval_strategy"),  # what eval_steps brings along
        (["--optim", "adamw_torch", "--optim", "sgd"], "twice"),
        (["adamw_torch"], "not a flag"),
        (["-o", "/x"], "'-o'"),
    ],
)
def test_extra_args_take_only_allowed_flags(extra: list[str], named: str) -> None:
    with pytest.raises(ValidationError) as info:
        RunConfig.model_validate(deep_merge(_BASE, {"training": {"extra_args": extra}}))
    (err,) = info.value.errors()
    assert err["loc"] == ("training", "extra_args") and named in err["msg"], err


def test_allowed_extra_args_reach_the_end_of_the_argv() -> None:
    extra = ["--optim", "adamw_torch", "--warmup_steps=5", "--tf32=False"]
    config = RunConfig.model_validate(deep_merge(_BASE, {"training": {"extra_args": extra}}))
    ctx = LaunchContext(output_dir="/o", data_cache_dir="/c")
    assert pretrain_args(config, ctx)[-4:] == extra


def test_every_number_and_text_field_is_bounded() -> None:
    """Integers fit the database's columns and text has a maximum length, so no value of the
    schema can be a 500 later (a new field without bounds fails here)."""
    from cpt_contract.runconfig.schema import MAX_INT

    unbounded = []
    for section, field in RunConfig.model_fields.items():
        for name, info in field.annotation.model_fields.items():  # type: ignore[union-attr]
            ann = str(info.annotation)
            highs = [m.le for m in info.metadata if hasattr(m, "le")]
            highs += [m.lt for m in info.metadata if hasattr(m, "lt")]
            kinds = set(get_args(info.annotation)) - {type(None)} or {info.annotation}
            numeric = kinds <= {int, float}
            if numeric and (not highs or max(highs) > MAX_INT):
                unbounded.append(f"{section}.{name}")
            limited = any(hasattr(m, "max_length") or hasattr(m, "pattern") for m in info.metadata)
            if ann in ("<class 'str'>", "str | None") and not limited:
                unbounded.append(f"{section}.{name}")
    assert not unbounded, unbounded


def _staged(**changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "model": {"model_name_or_path": "/m", "tokenizer_name_or_path": "/tok"},
        "data": {"dataset_dir": "/d"},
        "method": {"finetuning_type": "full"},
        "training": {"stages": [{"method": "new_embeddings", "max_steps": 2}, {"max_steps": 3}]},
        "launch": {"deepspeed": "none"},
    }
    for key, value in changes.items():
        section, name = key.split("__")
        config[section][name] = value
    return config


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"model__tokenizer_name_or_path": None}, "training.stages.0.method"),
        ({"model__tokenizer_name_or_path": "/m"}, "training.stages.0.method"),
        ({"launch__deepspeed": "zero2"}, "training.stages"),
        ({"training__max_steps": 4}, "training.max_steps"),
        (
            {"training__stages": [{"method": "lora", "max_steps": 2}]},
            "training.stages.0.method",
        ),
        (
            {"method__finetuning_type": "lora", "method__modules_to_save": ""},
            "training.stages.0.method",
        ),
    ],
)
def test_staged_runs_are_refused_at_their_field(changes: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationError) as info:
        RunConfig.model_validate(_staged(**changes))
    assert named in str(info.value)


def test_stages_set_max_steps_and_travel_as_one_json_flag() -> None:
    config = RunConfig.model_validate(_staged())
    assert config.training.max_steps == 5
    flags = schema_flags(config)
    assert "--max_steps=5" in flags
    stages = json.loads(next(f for f in flags if f.startswith("--stages=")).split("=", 1)[1])
    assert stages == [{"method": "new_embeddings", "max_steps": 2}, {"max_steps": 3}]
    # The run's own method, left empty, passes for either finetuning type.
    assert RunConfig.model_validate(_staged(method__finetuning_type="lora")).training.stages


def _replay(**data: Any) -> dict[str, Any]:
    return {
        "model": {"model_name_or_path": "/m"},
        "data": {"dataset_dir": "/d", "replay_share": 0.2, **data},
    }


def test_replay_share_is_a_plain_field_with_its_source() -> None:
    sources = [{"path": "/en", "name": "en", "role": "replay"}]
    config = RunConfig.model_validate(_replay(data_sources=sources))
    flags = schema_flags(config)
    assert "--replay_share=0.2" in flags
    items = json.loads(next(f for f in flags if f.startswith("--data_sources=")).split("=", 1)[1])
    assert items[0]["role"] == "replay"


@pytest.mark.parametrize(
    "data",
    [
        {"data_sources": [{"path": "/en", "name": "en"}]},  # no replay source
        {"dataset_dir": None, "data_sources": [{"path": "/en", "role": "replay"}]},  # only replay
    ],
)
def test_replay_share_is_refused_at_its_field(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        RunConfig.model_validate(_replay(**data))
    assert "data.replay_share" in str(info.value)


def test_replay_share_is_bounded() -> None:
    sources = [{"path": "/en", "role": "replay"}]
    for bad in (-0.1, 1.0):
        with pytest.raises(ValidationError, match="replay_share"):
            RunConfig.model_validate(_replay(data_sources=sources, replay_share=bad))
