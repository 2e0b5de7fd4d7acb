"""RunConfig -> the exact argv of ``torchrun worker/pretrain.py ...``, derived from the schema.

Each schema field says in its metadata how it becomes flags (``schema.py``: the default is
``--<field name> <value>``), so nothing here names a training flag; only the flags the panel
itself sets (``PANEL_FLAGS``) and those the launching worker knows (``LaunchContext``) are here.
Pure functions: no I/O, no shell. The worker executes the list as is
(``subprocess.Popen(argv)``), the API shows it as a preview, and the frontend copies it.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from cpt_contract.runconfig.schema import RunConfig


@dataclass(frozen=True)
class LaunchContext:
    """What only the worker knows when it launches (paths on its box, CPU or GPU)."""

    output_dir: str
    data_cache_dir: str
    deepspeed_config: str | None = None
    use_cpu: bool = False
    python: str = "python"
    script: str = "worker/pretrain.py"
    resume_from_checkpoint: str | None = None
    master_port: int | None = None
    node_rank: int | None = None
    run_id: str | None = None


#: Flags the panel itself always passes: the run is a training run, logged and saved by steps,
#: and the output dir is the panel's own. (A user's ``extra_args`` may not repeat these.)
PANEL_FLAGS: tuple[str, ...] = (
    "--do_train",
    "--logging_strategy",
    "steps",
    "--logging_first_step",
    "True",
    "--save_strategy",
    "steps",
    "--ddp_find_unused_parameters",
    "False",
    "--overwrite_output_dir",
)
#: Flags whose value only the launching worker knows (``LaunchContext``).
CONTEXT_FLAGS: tuple[str, ...] = (
    "--deepspeed",
    "--data_cache_dir",
    "--output_dir",
    "--resume_from_checkpoint",
    "--use_cpu",
)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def field_flags(name: str, value: object, extra: dict[str, Any]) -> list[str]:
    """One schema field → its flags, as its ``argv`` metadata says (see schema.py).

    A user's value always travels glued to its flag (``--name=value``): a value that begins
    with ``-`` (``--model_revision=--output_dir=/x``) is then a value to every parser, never a
    flag of its own.
    """
    style = extra.get("argv")
    if value is None or style == "none":
        return []
    if style == "switch":
        return [f"--{name}"] if value else []
    if style == "negatable":
        return [] if value else [f"--{name}=False"]
    if isinstance(style, dict):  # a choice that maps to its own flags
        return list(style[str(value)])
    if style == "csv":  # a list as one comma-separated value; empty: "none"
        return [f"--{name}={','.join(str(v) for v in value) or 'none'}"]  # type: ignore[attr-defined]
    if style == "json":  # structured values travel as one JSON argument

        def plain(v: object) -> object:
            return v.model_dump(exclude_none=True) if isinstance(v, BaseModel) else v

        items = (
            {k: plain(v) for k, v in value.items()}
            if isinstance(value, dict)
            else [plain(v) for v in value]  # type: ignore[attr-defined]
        )
        if not items:
            return []
        return [f"--{name}={json.dumps(items, ensure_ascii=False)}"]
    # An empty string is a value ("none", e.g. --modules_to_save=).
    return [*extra.get("argv_with", []), f"--{name}={_value(value)}"]


def _extra(field: FieldInfo) -> dict[str, Any]:
    extra = field.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def schema_flags(config: RunConfig) -> list[str]:
    """Every field of every section, in schema order, through its metadata."""
    args: list[str] = []
    for section_name in type(config).model_fields:
        section: BaseModel = getattr(config, section_name)
        for name, field in type(section).model_fields.items():
            extra = _extra(field)
            only_for = extra.get("argv_only_for")
            if only_for is not None and config.method.finetuning_type != only_for:
                continue
            args += field_flags(name, getattr(section, name), extra)
    return args


def pretrain_args(config: RunConfig, ctx: LaunchContext) -> list[str]:
    """The flags of ``worker/pretrain.py`` (everything after the script path)."""
    args: list[str] = []
    if config.launch.deepspeed != "none" and ctx.deepspeed_config:
        args += ["--deepspeed", ctx.deepspeed_config]
    args += schema_flags(config)
    args += ["--data_cache_dir", ctx.data_cache_dir, "--output_dir", ctx.output_dir]
    args += list(PANEL_FLAGS)
    if ctx.resume_from_checkpoint:
        args += ["--resume_from_checkpoint", ctx.resume_from_checkpoint]
    if ctx.use_cpu:
        args.append("--use_cpu")
    return args + list(config.training.extra_args)


def torchrun_argv(config: RunConfig, ctx: LaunchContext) -> list[str]:
    """The whole command: ``python -m torch.distributed.run`` (= torchrun) plus the script.

    ``python -m torch.distributed.run`` rather than the ``torchrun`` script so that the
    worker's own interpreter (its virtualenv) is the one that runs.
    """
    launch = config.launch
    argv = [ctx.python, "-m", "torch.distributed.run", "--nnodes", str(launch.nnodes)]
    argv += ["--nproc_per_node", str(launch.nproc_per_node)]
    if launch.nnodes > 1 and launch.rdzv_endpoint:
        argv += ["--rdzv_backend", "c10d", "--rdzv_endpoint", launch.rdzv_endpoint]
        if ctx.run_id:
            argv += ["--rdzv_id", ctx.run_id]
        if ctx.node_rank is not None:
            argv += ["--node_rank", str(ctx.node_rank)]
    else:
        argv += ["--master_addr", "127.0.0.1"]
        if ctx.master_port:
            argv += ["--master_port", str(ctx.master_port)]
    argv.append(ctx.script)
    return argv + pretrain_args(config, ctx)


def display_command(argv: list[str]) -> str:
    """A copyable shell rendering of an argv (for people, never executed)."""
    shown = list(argv)
    if len(shown) > 2 and shown[1:3] == ["-m", "torch.distributed.run"]:
        shown = ["torchrun", *shown[3:]]
    return " ".join(shlex.quote(a) for a in shown)
