"""Continual pretraining of a causal LM, LoRA or full weights, under torchrun + DeepSpeed.

The seed's ``run_clm_pt_with_peft.py`` rebuilt for transformers 5.x (spec:
``shared/seed/continual-pretraining-overview.md``)::

    torchrun --nnodes 1 --nproc_per_node 1 worker/pretrain.py --deepspeed ds_zero2_no_offload.json \\
        --model_name_or_path DIR --tokenizer_name_or_path DIR --dataset_dir DIR ... --do_train
    python worker/pretrain.py ...            # one process, no launcher needed

Every seed argument plus all of HF ``TrainingArguments``; also ``--finetuning_type lora|full``,
``--divergence_patience K`` and ``--resume_from_checkpoint last|checkpoint-N|PATH``.
Rank 0 appends one JSON event per line to ``<output_dir>/events.jsonl``
(docs/architecture.md, "events.jsonl").

This file is the recipe, read top to bottom in ``train`` and ``main``; each step's details live in
``worker/training/`` (arguments, tokenizer, data, modeling, checkpoints, callbacks, failures, process).

Exit codes (the ``end`` event's ``status`` is the primary signal):

==== =========================================================================
0    succeeded
1    failed: an unexpected error
2    bad arguments or data (the message names the flag)
3    diverged: NaN/inf loss on ``--divergence_patience`` consecutive steps
4    out of memory (CUDA or host)
75   preempted: SIGTERM during training; a checkpoint was saved at the next step
143  cancelled: SIGUSR2 (the panel's cancel), or SIGTERM before the training loop
==== =========================================================================
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

# Runnable as a script (``python worker/pretrain.py``): make the repository importable.
_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))
# On a CPU box DeepSpeed picks its cpu accelerator anyway; saying so silences a warning.
# (Before any import of transformers/deepspeed, hence before ``worker.training``.)
if not os.environ.get("DS_ACCELERATOR"):
    with contextlib.suppress(Exception):
        import torch as _t

        if not _t.cuda.is_available():
            os.environ["DS_ACCELERATOR"] = "cpu"

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import default_data_collator  # noqa: E402

from worker.data.eval_sets import parse_eval_prompts  # noqa: E402
from worker.events import EventWriter  # noqa: E402
from worker.exit_codes import (  # noqa: E402
    EXIT_BAD_INPUT,
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_OK,
)
from worker.training import guards  # noqa: E402
from worker.training.arguments import (  # noqa: E402
    DataTrainingArguments,
    ModelArguments,
    PretrainArguments,
    check_arguments,
    parse_args,
)
from worker.training.callbacks import EventsCallback, PretrainTrainer  # noqa: E402
from worker.training.checkpoints import (  # noqa: E402
    check_output_dir,
    check_resume_world_size,
    resolve_resume,
)
from worker.training.data import (  # noqa: E402
    build_eval_sets,
    build_run_data,
    choose_separator,
)
from worker.training.evaluation import Evaluator  # noqa: E402
from worker.training.failures import (  # noqa: E402
    DivergedError,
    classify,
    disk_full_reason,
    install_sigterm,
    is_disk_full,
    volume_full,
    write_failure_note,
)
from worker.training.fencing import FenceCallback  # noqa: E402
from worker.training.modeling import (  # noqa: E402
    apply_config_overrides,
    build_model,
    choose_block_size,
    count_parameters,
    load_config,
)
from worker.training.preemption import PreemptionCallback, raise_if_preempted  # noqa: E402
from worker.training.process import (  # noqa: E402
    finish_distributed,
    setup_logging,
)
from worker.training.run_state import RunContext  # noqa: E402
from worker.training.stages import (  # noqa: E402
    StageController,
    is_distributed,
    new_rows,
    parse_stages,
)
from worker.training.tokenizer import (  # noqa: E402
    load_tokenizer,
)
from worker.training.trackers import (  # noqa: E402
    MlflowRunRecord,
    continue_mlflow_run,
    keep_one_mlflow_run,
)

logger = logging.getLogger("pretrain")


def train(
    model_args: ModelArguments,
    data_args: DataTrainingArguments,
    args: PretrainArguments,
    run: RunContext,
) -> None:
    """The recipe; raises on failure (``main`` turns that into an end event and an exit code)."""
    # 1. Checks that need no model or data, and the checkpoint to resume from.
    check_arguments(model_args, data_args, args)
    output_dir = Path(str(args.output_dir))
    resume = resolve_resume(args.resume_from_checkpoint, output_dir)
    check_output_dir(args, resume)
    if resume is not None:
        check_resume_world_size(resume, args.world_size)
        run.resumed_from = resume
    transformers.set_seed(args.seed)

    # 2. Tokenizer (maybe trained from scratch) and model config, which bounds the block size.
    tokenizer = load_tokenizer(model_args, data_args, args)
    config = load_config(model_args)
    apply_config_overrides(config, model_args)
    block_size = choose_block_size(data_args.block_size, config)

    # 3. Data before the model: bad data fails in seconds, not after loading weights.
    run.enter_phase("preparing_data", 0)
    separator = choose_separator(tokenizer, config)
    run.document_separator = separator.info()
    data, run.data_sources = build_run_data(data_args, args, tokenizer, block_size, separator)
    train_ds = data.train
    tokens_per_step = (
        block_size
        * args.per_device_train_batch_size
        * args.gradient_accumulation_steps
        * args.world_size
    )
    plan_tokens(run.data_sources, args, tokens_per_step)
    # Held-out sets, each scored exactly (bits/char) over a fixed prefix of its documents.
    eval_sets = build_eval_sets(data_args, tokenizer, block_size, data.eval, separator.id)
    run.eval_sets = [w.info() for w in eval_sets]
    prompts = parse_eval_prompts(args.eval_prompts) if args.eval_prompts else None

    # 4. Model: load or build, resize the vocabulary to the tokenizer, wrap in LoRA.
    run.enter_phase("loading_model", 0)
    model, old_vocab, run.vocabulary = build_model(model_args, args, tokenizer, config)
    run.total_params, run.trainable_params = count_parameters(model)
    run.vocab_size = max(len(tokenizer), old_vocab)
    run.tokens_per_step = tokens_per_step
    if args.process_index == 0:
        logger.info(
            "%s: %d trainable of %d parameters; %d tokens per step",
            args.finetuning_type,
            run.trainable_params,
            run.total_params,
            run.tokens_per_step,
        )

    # A staged run: which parameters train, and how fast, follows from the step.
    stages = (
        parse_stages(args.stages, args.finetuning_type, args.learning_rate) if args.stages else None
    )
    callbacks: list[Any] = [EventsCallback(run), PreemptionCallback(), FenceCallback()]
    # One MLflow run for all of this run's attempts (worker/training/trackers.py).
    if continue_mlflow_run(args.report_to, output_dir) and args.process_index == 0:
        logger.info("continuing the MLflow run of an earlier attempt")
    callbacks.append(MlflowRunRecord(output_dir))
    if stages:
        controller = StageController(
            stages,
            model,
            new_rows(run.vocabulary),
            run,
            distributed=is_distributed(args),
            evaluates=bool(eval_sets),
        )
        run.stages = controller.plan()
        callbacks.insert(0, controller)  # decides a stage end's save/eval before the events do

    # 5. Trainer with the events callback (start/log/eval/checkpoint events, divergence stop).
    if eval_sets and not args.do_eval:
        args.do_eval = True  # evaluate at least at the end: bits/char is a deliverable
    # The step-0 baseline; a resumed run has it already.
    args.eval_on_start = bool(eval_sets) and args.eval_at_start and resume is None
    trainer = PretrainTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        # Scored by the Evaluator; the Trainer only checks that there is something to evaluate.
        eval_dataset=eval_sets or None,
        processing_class=tokenizer,
        data_collator=default_data_collator,
        callbacks=callbacks,
    )
    trainer.run = run
    trainer.stages = stages
    if eval_sets or prompts:
        trainer.evaluator = Evaluator(
            eval_sets, prompts, args.sample_max_new_tokens, args.per_device_eval_batch_size
        )

    # 6. Train (or resume), then save the final weights and tokenizer.
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    raise_if_preempted()  # SIGTERM: checkpoint saved at a step boundary, stop here
    if run.diverged_at is not None:
        raise DivergedError(
            run.diverged_reason
            or f"loss was NaN/inf on {args.divergence_patience} consecutive steps (stopped at "
            f"step {run.diverged_at}); lower --learning_rate, keep --max_grad_norm, or use bf16 "
            "instead of fp16"
        )
    run.train_loss = result.training_loss
    run.enter_phase("saving", trainer.state.global_step)
    trainer.save_model(str(output_dir))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(output_dir))
        trainer.save_state()

    # 7. The final evaluation, unless one just ran.
    if eval_sets and run.last_eval_step != trainer.state.global_step:
        run.enter_phase("evaluating", trainer.state.global_step)
        keep_one_mlflow_run(args.report_to)
        trainer.evaluate()


def plan_tokens(sources: list[dict[str, Any]], args: PretrainArguments, per_step: int) -> None:
    """Per source, the training tokens planned for this run: its share of max_steps' tokens
    (or of the epochs'), for the ``start`` event and the run page."""
    if args.max_steps > 0:
        total: float | None = args.max_steps * per_step
    else:
        epoch = sum(row.get("train_tokens") or 0 for row in sources)
        total = epoch * args.num_train_epochs if epoch else None
    for row in sources:
        share = row.get("share")
        row["planned_tokens"] = round(share * total) if total and share is not None else None


def main(argv: list[str] | None = None) -> int:
    """Parse, train, and always end with an ``end`` event and an exit code (see the table above).

    The arguments are parsed once, by the parser, before anything is written: the output
    directory is known only from a successful parse (a bad command line exits 2 with argparse's
    message, which the panel reports from the log).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    guards.install()  # die with torchrun; dump stacks on SIGUSR1
    rank = int(os.environ.get("RANK", "0"))
    try:
        model_args, data_args, args = parse_args(argv)
    except ValueError as exc:  # a dataclass refused a value (argparse errors exit 2 itself)
        print(f"ERROR [failed] {exc}", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
    output_dir = Path(str(args.output_dir))
    events = EventWriter(str(output_dir), enabled=rank == 0)
    run = RunContext(events=events, rank=rank)
    install_sigterm(run, output_dir)
    try:
        setup_logging(args)
        if args.process_index == 0:
            logger.info(
                "transformers %s, torch %s, world size %d",
                transformers.__version__,
                torch.__version__,
                args.world_size,
            )
        train(model_args, data_args, args, run)
        loss_fields: dict[str, Any] = {"train_loss": run.train_loss}
        if run.last_eval:
            loss_fields["perplexity"] = run.last_eval[1]
            loss_fields["eval_loss"] = run.last_eval[0]
        events.end("succeeded", "training finished", run.step, **loss_fields)
        code = EXIT_OK
    except SystemExit:
        raise
    except BaseException as exc:  # every way out writes an end event
        status, reason, code = classify(exc)
        if is_disk_full(exc) or volume_full(output_dir):  # the partial checkpoint goes
            status, reason = "disk_full", disk_full_reason(output_dir, run.step, rank == 0)
        if isinstance(exc, KeyboardInterrupt):
            status, reason, code = "cancelled", "interrupted", EXIT_CANCELLED
        logger.error("%s: %s", status, reason)
        if code == EXIT_FAILED:
            logger.exception("traceback")
        if rank != 0:
            write_failure_note(output_dir, rank, status, reason)
        with contextlib.suppress(OSError):  # a disk still full: the exit code tells the rest
            events.end(status, reason, run.step)
        print(f"ERROR [{status}] {reason}", file=sys.stderr, flush=True)
    finally:
        events.close()
    finish_distributed(code)
    return code


if __name__ == "__main__":
    # torch elastic's error file: torchrun's summary then carries a rank's uncaught traceback.
    from torch.distributed.elastic.multiprocessing.errors import record

    sys.exit(record(main)())
