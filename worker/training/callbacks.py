"""Trainer hooks: Trainer callbacks → events.jsonl, NaN/inf divergence detection, MFU."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback

from worker.training.checkpoints import write_run_info
from worker.training.divergence import LossWatch
from worker.training.evaluation import Evaluator
from worker.training.run_state import RunContext
from worker.training.stages import Stage, lr_lambda


def peak_flops() -> float | None:
    """Dense bf16 peak of the visible GPU (for MFU), when known."""
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(0).upper()
    for key, flops in (
        ("H200", 989e12),
        ("H100", 989e12),
        ("A100", 312e12),
        ("L40", 181e12),
        ("A10", 125e12),
        ("4090", 165e12),
    ):
        if key in name:
            return flops
    return None


class EventsCallback(TrainerCallback):
    """Turns Trainer callbacks into events (rank 0), and stops a diverging run."""

    def __init__(self, run: RunContext) -> None:
        self.run = run
        self._last_time = time.time()
        self._last_step = 0
        #: Seconds spent evaluating/saving since the last log: not training time, so not in
        #: tokens/s (an evaluation would otherwise read as a slow step, a resume as a fast one).
        self._paused = 0.0
        #: Pause time up to here is already left out of an interval (a log inside an
        #: evaluation or save); the phase itself keeps its own start for its timing.
        self._pause_mark = 0.0
        #: Set at the first step of this process, so loading, resuming and skipping data are
        #: not counted as training time.
        self._anchored = False
        self._training = False
        self._flops = peak_flops()
        #: Divergence beyond NaN and dead training, judged per log (made once args are known).
        self._watch: LossWatch | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        run = self.run
        run.step = state.global_step
        self._last_time, self._last_step = time.time(), state.global_step
        run.events.emit(
            "start",
            state.global_step,
            max_steps=state.max_steps,
            num_train_epochs=state.num_train_epochs,
            world_size=args.world_size,
            tokens_per_step=run.tokens_per_step,
            total_params=run.total_params,
            trainable_params=run.trainable_params,
            vocab_size=run.vocab_size,
            vocabulary=run.vocabulary,
            resumed_from=str(run.resumed_from) if run.resumed_from else None,
            finetuning_type=args.finetuning_type,
            data_sources=run.data_sources,
            eval_sets=run.eval_sets,
            document_separator=run.document_separator,
            **({"stages": run.stages} if run.stages else {}),
        )
        self._training = True
        run.enter_phase("training", state.global_step)

    def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self._training = False

    def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if not self._anchored:
            self._anchored = True
            self._last_time, self._last_step, self._paused = time.time(), state.global_step, 0.0

    def _pause(self, phase: str, step: int) -> None:
        if self.run.phase == "training":
            self.run.enter_phase(phase, step)

    def _back_to_training(self, step: int) -> float:
        """Return to training after an evaluation or save; returns the seconds it took."""
        if not self._training or self.run.phase == "training":
            return time.time() - self.run.phase_since
        uncounted = self._uncounted_pause()
        seconds = self.run.enter_phase("training", step)
        self._paused += uncounted
        return seconds

    def _uncounted_pause(self) -> float:
        """Seconds of the current evaluation or save not yet left out of a log interval."""
        return time.time() - max(self.run.phase_since, self._pause_mark)

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        run = self.run
        run.step = state.global_step
        bad = torch.tensor([1.0 if run.nonfinite_in_step else 0.0], device=args.device)
        run.nonfinite_in_step = False
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # Every rank must take the same decision, or the others hang in a collective.
            torch.distributed.all_reduce(bad, op=torch.distributed.ReduceOp.MAX)
        run.nonfinite_streak = run.nonfinite_streak + 1 if bad.item() > 0 else 0
        if run.nonfinite_streak >= args.divergence_patience:
            run.diverged_at = state.global_step
            control.should_training_stop = True
            control.should_save = False
        # DefaultFlowCallback ran first and decided what follows this step (log, eval, save).
        if control.should_evaluate:
            self._pause("evaluating", state.global_step)
        elif control.should_save:
            self._pause("saving", state.global_step)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        if not logs or "loss" not in logs:
            return  # eval dicts and the final summary are reported elsewhere
        now = time.time()
        steps = state.global_step - self._last_step
        # Training time only: evaluations and saves since the last log are left out (an
        # evaluation or save that began at this very step is counted from now on).
        paused = self._paused
        if self.run.phase != "training":
            paused += now - max(self.run.phase_since, self._pause_mark)
            self._pause_mark = now
        train_seconds = now - self._last_time - paused
        tps = (
            steps * self.run.tokens_per_step / train_seconds
            if steps > 0 and train_seconds > 0
            else None
        )
        self._last_time, self._last_step, self._paused = now, state.global_step, 0.0
        # The Trainer's logging_nan_inf_filter hides NaN losses (logs 0 or an average): be honest.
        loss = None if self.run.nonfinite_since_log else logs.get("loss")
        self.run.nonfinite_since_log = False
        fields: dict[str, Any] = {
            "loss": loss,
            "learning_rate": logs.get("learning_rate"),
            "grad_norm": logs.get("grad_norm"),
            "epoch": logs.get("epoch", state.epoch),
            "tokens_seen": state.global_step * self.run.tokens_per_step,
            "tokens_per_second": tps,
            # What the API's windowed tokens/s and ETA sum: the interval's steps and their
            # training seconds.
            "interval_steps": steps,
            "train_seconds": round(train_seconds, 6) if steps > 0 else None,
        }
        if torch.cuda.is_available() and not args.use_cpu:
            fields["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
            if self._flops and tps:
                # 6·N FLOPs per token (forward + backward), per GPU.
                fields["mfu"] = 6 * self.run.total_params * tps / args.world_size / self._flops
        self.run.events.emit("log", state.global_step, **fields)
        self._judge(args, state, control, loss, logs.get("grad_norm"))

    def _judge(self, args: Any, state: Any, control: Any, loss: Any, grad_norm: Any) -> None:
        """Stop a run whose loss ran away; warn once about one that stopped learning."""
        if self._watch is None:
            self._watch = LossWatch(args.divergence_factor, args.divergence_logs)
        finding = self._watch.observe(
            float(loss) if isinstance(loss, int | float) else None,
            float(grad_norm) if isinstance(grad_norm, int | float) else None,
        )
        if finding is None:
            return
        if finding.code == "diverged":
            self.run.diverged_at, self.run.diverged_reason = state.global_step, finding.message
            control.should_training_stop = True
            control.should_save = False
            return
        self.run.events.emit(
            "warning", state.global_step, code=finding.code, message=finding.message
        )

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        if not metrics or "eval_loss" not in metrics:
            return
        loss = float(metrics["eval_loss"])
        ppl = perplexity(loss)
        metrics["perplexity"] = ppl
        self.run.last_eval = (loss, ppl)
        self.run.last_eval_step = state.global_step
        # Per set: eval_<set>_loss/_perplexity/_bits_per_char/_bits_per_byte (training/evaluation.py).
        per_set = {
            k: v
            for k, v in metrics.items()
            if k.startswith("eval_") and k != "eval_loss" and isinstance(v, int | float)
        }
        seconds = time.time() - self.run.phase_since if self.run.phase == "evaluating" else None
        self.run.events.emit(
            "eval",
            state.global_step,
            eval_loss=loss,
            perplexity=ppl,
            epoch=state.epoch,
            seconds=round(seconds, 3) if seconds is not None else None,
            **per_set,
        )
        if self._training:
            if control.should_save:
                uncounted = self._uncounted_pause()
                self.run.enter_phase("saving", state.global_step)
                self._paused += uncounted
            else:
                self._back_to_training(state.global_step)

    def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and path.is_dir():
            write_run_info(path, args, state.global_step, self.run.stage)
        seconds = self._back_to_training(state.global_step) if self.run.phase == "saving" else None
        self.run.events.emit(
            "checkpoint",
            state.global_step,
            path=str(path.resolve()),
            name=path.name,
            seconds=round(seconds, 3) if seconds is not None else None,
        )


def perplexity(loss: float) -> float:
    try:
        return math.exp(loss)
    except OverflowError:
        return float("inf")


class PretrainTrainer(Trainer):
    """Notes NaN/inf losses per micro-batch (the logged loss filters them out), and evaluates
    through the ``Evaluator`` (exact per-set NLL, samples, budget) when there is one."""

    run: RunContext | None = None
    evaluator: Evaluator | None = None
    #: A staged run's stages: the learning rate follows each stage's own schedule.
    stages: list[Stage] | None = None

    def create_scheduler(self, num_training_steps: int, optimizer: Any = None) -> Any:
        if not self.stages or self.lr_scheduler is not None:
            return super().create_scheduler(num_training_steps, optimizer)
        factor = lr_lambda(
            self.stages,
            self.args.learning_rate,
            str(getattr(self.args.lr_scheduler_type, "value", self.args.lr_scheduler_type)),
            float(getattr(self.args, "warmup_ratio", 0.0) or 0.0),
        )
        target: Any = optimizer or self.optimizer
        self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(target, factor)
        self._created_lr_scheduler = True
        return self.lr_scheduler

    def evaluate(
        self,
        eval_dataset: Any = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> dict[str, float]:
        if self.evaluator is None:
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        if self.run is not None and self.run.phase == "training":
            # The step-0 baseline comes before any step end that would have marked it.
            self.run.enter_phase("evaluating", self.state.global_step)
        started = time.time()
        metrics = self.evaluator.score(self)
        scored = time.time()
        samples = self.evaluator.samples(self)
        ended = time.time()
        metrics["eval_runtime"] = ended - started
        # Scoring and sampling apart: the launch form estimates each (backend eval_time.py).
        metrics["eval_score_seconds"] = round(scored - started, 3)
        metrics["eval_sample_seconds"] = round(ended - scored, 3)
        metrics["eval_sample_tokens"] = self.evaluator.sample_tokens
        step = self.state.global_step
        if metrics.get("eval_loss") is not None:
            self.log(dict(metrics))
            self.control = self.callback_handler.on_evaluate(
                self.args, self.state, self.control, metrics
            )
        if self.run is not None:
            for sample in samples:
                self.run.events.emit("sample", step, **sample)
            warning = self.evaluator.check_budget(started, ended, step)
            if warning is not None:
                self.run.events.emit("warning", step, **warning)
        return metrics

    def training_step(self, model: Any, inputs: Any, num_items_in_batch: Any = None) -> Any:
        loss = super().training_step(model, inputs, num_items_in_batch)
        if self.run is not None and not torch.isfinite(loss.detach()).all():
            self.run.nonfinite_in_step = True
            self.run.nonfinite_since_log = True
        return loss
