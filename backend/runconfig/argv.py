"""RunConfig -> the exact argv of ``torchrun worker/pretrain.py ...``.

Pure functions: no I/O, no shell. The worker executes the list as is
(``subprocess.Popen(argv)``), the API shows it as a preview, and the frontend copies it.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from backend.runconfig.schema import RunConfig


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


def _flag(name: str, value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, bool):
        return [f"--{name}", "True" if value else "False"]
    if isinstance(value, float):
        return [f"--{name}", repr(value)]
    return [f"--{name}", str(value)]


def pretrain_args(config: RunConfig, ctx: LaunchContext) -> list[str]:
    """The flags of ``worker/pretrain.py`` (everything after the script path)."""
    m, d, meth, t, launch = config.model, config.data, config.method, config.training, config.launch
    args: list[str] = []
    if launch.deepspeed != "none" and ctx.deepspeed_config:
        args += _flag("deepspeed", ctx.deepspeed_config)
    for name in ("model_name_or_path", "tokenizer_name_or_path", "model_type", "config_name"):
        args += _flag(name, getattr(m, name))
    args += _flag("config_overrides", m.config_overrides)
    args += _flag("torch_dtype", m.torch_dtype)
    if not m.use_fast_tokenizer:
        args += _flag("use_fast_tokenizer", False)
    if m.model_revision != "main":
        args += _flag("model_revision", m.model_revision)

    args += _flag("dataset_dir", d.dataset_dir)
    args += _flag("train_file", d.train_file)
    args += _flag("validation_file", d.validation_file)
    args += _flag("data_cache_dir", ctx.data_cache_dir)
    args += _flag("validation_split_percentage", d.validation_split_percentage)
    args += _flag("block_size", d.block_size)
    args += _flag("max_train_samples", d.max_train_samples)
    args += _flag("max_eval_samples", d.max_eval_samples)
    args += _flag("preprocessing_num_workers", d.preprocessing_num_workers)
    if d.streaming:
        args.append("--streaming")
    if not d.keep_linebreaks:
        args += _flag("keep_linebreaks", False)
    if d.overwrite_cache:
        args.append("--overwrite_cache")

    args += _flag("finetuning_type", meth.finetuning_type)
    if meth.finetuning_type == "lora":
        args += _flag("trainable", meth.trainable)
        args += _flag("lora_rank", meth.lora_rank)
        args += _flag("lora_alpha", meth.lora_alpha)
        args += _flag("lora_dropout", meth.lora_dropout)
        args += _flag("peft_path", meth.peft_path)
    if meth.modules_to_save:
        args += _flag("modules_to_save", meth.modules_to_save)

    args += ["--do_train"]
    args += _flag("seed", t.seed)
    if t.max_steps > 0:
        args += _flag("max_steps", t.max_steps)
    args += _flag("num_train_epochs", t.num_train_epochs)
    args += _flag("per_device_train_batch_size", t.per_device_train_batch_size)
    args += _flag("per_device_eval_batch_size", t.per_device_eval_batch_size)
    args += _flag("gradient_accumulation_steps", t.gradient_accumulation_steps)
    args += _flag("learning_rate", t.learning_rate)
    args += _flag("lr_scheduler_type", t.lr_scheduler_type)
    args += _flag("warmup_ratio", t.warmup_ratio)
    args += _flag("weight_decay", t.weight_decay)
    args += _flag("max_grad_norm", t.max_grad_norm)
    if t.precision == "bf16":
        args.append("--bf16")
    elif t.precision == "fp16":
        args.append("--fp16")
    if t.gradient_checkpointing:
        args.append("--gradient_checkpointing")
    args += ["--logging_strategy", "steps"]
    args += _flag("logging_steps", t.logging_steps)
    args += _flag("logging_first_step", True)
    args += ["--save_strategy", "steps"]
    args += _flag("save_steps", t.save_steps)
    args += _flag("save_total_limit", t.save_total_limit)
    if t.eval_steps:
        args += ["--do_eval", "--eval_strategy", "steps"]
        args += _flag("eval_steps", t.eval_steps)
    args += _flag("ddp_timeout", t.ddp_timeout)
    args += _flag("ddp_find_unused_parameters", False)
    if t.debug_mode:
        args.append("--debug_mode")
    args += _flag("output_dir", ctx.output_dir)
    args += ["--overwrite_output_dir"]
    args += _flag("resume_from_checkpoint", ctx.resume_from_checkpoint)
    args += ["--report_to", "none"]
    if ctx.use_cpu:
        args.append("--use_cpu")
    args += list(t.extra_args)
    return args


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
