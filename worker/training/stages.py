"""Staged training in one run (``--stages``): e.g. first only the new embedding rows, then LoRA
or all weights, each stage with its own steps and learning rate.

One Trainer, one optimizer, one metrics stream; the global step counts on across stages and
the stage in force is a function of it, so a checkpoint resumes inside whichever stage it was
written in. What a stage does:

- ``new_embeddings``: only the input and output embedding matrices train (one matrix when they
  are tied, so it is masked once), and a gradient hook zeroes every row but the new tokens'
  (the base tokenizer's rows, and a padded matrix's rows past the new tokens). Zero gradient rows keep Adam's moments at zero there, so those rows move by exactly 0;
  weight decay (which would shrink them) is off for the stage. The base rows stay bit-identical.
- ``lora`` / ``full``: what ``--finetuning_type`` trains (LoRA adapters and modules_to_save, or
  every weight).

Parameters outside the stage get no gradient (``requires_grad`` off in a plain process; under
torchrun, even with one process, the Trainer wraps the model in DDP, whose reducer is fixed at
wrap time: there their gradients are zeroed in backward and dropped before the optimizer
step), so AdamW skips them: their moments start fresh when their stage begins.
The learning rate follows ``--lr_scheduler_type`` with ``--warmup_ratio`` inside each stage.
A checkpoint and an evaluation are forced at each stage's end; a ``stage`` event marks each
stage's beginning (again after a resume), carrying the stage's ``start`` step for the charts.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import Any

import torch
from transformers import TrainerCallback

from worker.training.failures import InputError
from worker.training.run_state import RunContext

logger = logging.getLogger("pretrain")

METHODS = ("new_embeddings", "lora", "full")


@dataclass(frozen=True)
class Stage:
    index: int
    name: str
    method: str
    max_steps: int
    learning_rate: float
    #: Optimizer steps done before the stage begins (its first step is ``start + 1``).
    start: int

    @property
    def end(self) -> int:
        return self.start + self.max_steps

    def info(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "method": self.method,
            "start": self.start,
            "end": self.end,
            "learning_rate": self.learning_rate,
        }


def parse_stages(text: str, finetuning_type: str, learning_rate: float) -> list[Stage]:
    """``--stages`` (a JSON list of {method, max_steps, learning_rate, name}) → stages."""
    try:
        items = json.loads(text)
    except ValueError as exc:
        raise InputError(f"--stages is not JSON: {exc}") from exc
    if not isinstance(items, list) or not items:
        raise InputError('--stages must be a non-empty JSON list of {"max_steps": N, ...}')
    stages: list[Stage] = []
    start = 0
    for i, item in enumerate(items):
        if not isinstance(item, dict) or set(item) - {
            "method",
            "max_steps",
            "learning_rate",
            "name",
        }:
            raise InputError(
                f"--stages[{i}]: an object with method, max_steps, learning_rate, name"
            )
        method = item.get("method") or finetuning_type
        if method not in METHODS:
            raise InputError(f"--stages[{i}].method must be one of {', '.join(METHODS)}")
        if method != "new_embeddings" and method != finetuning_type:
            raise InputError(
                f"--stages[{i}].method is {method} but --finetuning_type is {finetuning_type}; "
                "besides new_embeddings a run's stages use its own method"
            )
        steps = item.get("max_steps")
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise InputError(f"--stages[{i}].max_steps must be a whole number >= 1")
        lr = item.get("learning_rate") or learning_rate
        if not isinstance(lr, int | float) or not 0 < lr <= 1:
            raise InputError(f"--stages[{i}].learning_rate must be in (0, 1]")
        name = str(item.get("name") or f"{i + 1}-{method}")
        stages.append(Stage(i, name, method, steps, float(lr), start))
        start += steps
    return stages


def total_steps(stages: list[Stage]) -> int:
    return stages[-1].end


def stage_at(stages: list[Stage], step: int) -> Stage:
    """The stage the next optimizer step (after ``step`` done) belongs to."""
    for stage in stages:
        if step < stage.end:
            return stage
    return stages[-1]


def schedule_factor(kind: str, warmup_ratio: float, steps: int, k: int) -> float:
    """transformers' schedules (linear, cosine, constant ...) over one stage, at its step ``k``."""
    warm = math.ceil(steps * warmup_ratio) if warmup_ratio > 0 else 0
    if k < warm:
        return k / max(1, warm)
    if kind in ("constant", "constant_with_warmup"):
        return 1.0
    progress = (k - warm) / max(1, steps - warm)
    if kind in ("cosine", "cosine_with_restarts"):
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
    return max(0.0, (steps - k) / max(1, steps - warm))  # linear (and polynomial, power 1)


def lr_lambda(stages: list[Stage], base_lr: float, kind: str, warmup_ratio: float) -> Any:
    """The LambdaLR factor at global step ``step`` (the optimizer's lr is ``base_lr``)."""

    def factor(step: int) -> float:
        stage = stage_at(stages, step)
        inside = schedule_factor(kind, warmup_ratio, stage.max_steps, step - stage.start)
        return stage.learning_rate / base_lr * inside

    return factor


def is_distributed(args: Any) -> bool:
    """Whether the Trainer wraps the model in DDP (also under torchrun with one process)."""
    initialized = torch.distributed.is_available() and torch.distributed.is_initialized()
    return bool(args.world_size > 1 or initialized)


def new_rows(vocabulary: dict[str, Any] | None) -> tuple[int, int] | None:
    """The embedding rows of the tokens an extended tokenizer added: from the base tokenizer's
    size to the new one (``extend_vocabulary``'s record; a padded matrix's rows past the new
    tokens stay frozen too). None: the vocabulary did not grow."""
    if not vocabulary or not vocabulary.get("new_tokens"):
        return None
    return int(vocabulary["base_tokenizer"]), int(vocabulary["tokenizer"])


def _trainable_weights(module: Any) -> list[Any]:
    """An embedding's weight, or under PEFT the trained copies of ``modules_to_save``."""
    copies = getattr(module, "modules_to_save", None)
    if copies is not None:
        return [m.weight for m in copies.values()]
    return [module.weight]


def embedding_weights(model: Any) -> list[Any]:
    """The input and output embedding matrices that train, each once (tied: one matrix)."""
    found: dict[int, Any] = {}
    modules = [model.get_input_embeddings(), model.get_output_embeddings()]
    for module in modules:
        if module is None:
            continue
        for weight in _trainable_weights(module):
            found.setdefault(id(weight), weight)
    return list(found.values())


def _numel(params: list[Any]) -> int:
    return sum(p.numel() for p in params)


class StageController(TrainerCallback):
    """Applies the stage in force at each step's beginning (also after a resume)."""

    def __init__(
        self,
        stages: list[Stage],
        model: Any,
        rows: tuple[int, int] | None,
        run: RunContext,
        distributed: bool,
        evaluates: bool,
    ) -> None:
        self.stages = stages
        self.run = run
        #: The rows a new_embeddings stage trains (the new tokens'); the others are masked.
        self.rows = rows
        self.distributed = distributed
        self.evaluates = evaluates
        #: What the run's method trains (requires_grad as built: LoRA's or every weight).
        self.method_params = [p for p in model.parameters() if p.requires_grad]
        self.embeddings = embedding_weights(model) if self._needs_embeddings() else []
        self._check_embeddings()
        ids = {id(p) for p in self.method_params}
        self.all_params = self.method_params + [p for p in self.embeddings if id(p) not in ids]
        self.current: Stage | None = None
        self._active: set[int] = set()
        for weight in self.embeddings:
            weight.register_hook(self._mask_base_rows)
        if distributed:
            for param in self.all_params:
                param.register_hook(self._hook_for(param))

    def _needs_embeddings(self) -> bool:
        return any(s.method == "new_embeddings" for s in self.stages)

    def _check_embeddings(self) -> None:
        if not self._needs_embeddings():
            return
        frozen = [w for w in self.embeddings if not w.requires_grad]
        if frozen or not self.embeddings:
            raise InputError(
                "--stages: a new_embeddings stage trains the input and output embeddings, and "
                "this LoRA run does not train them; list them in --modules_to_save "
                "(e.g. embed_tokens,lm_head)"
            )
        if self.rows is None:
            raise InputError(
                "--stages: a new_embeddings stage trains only the rows an extended tokenizer "
                "adds, and this tokenizer adds none to the base model's; give "
                "--tokenizer_name_or_path an extended tokenizer"
            )

    def params_of(self, stage: Stage) -> list[Any]:
        return self.embeddings if stage.method == "new_embeddings" else self.method_params

    def trainable_of(self, stage: Stage) -> int:
        """Parameters the stage updates (for new_embeddings: the new rows only)."""
        if stage.method == "new_embeddings" and self.rows is not None:
            first, end = self.rows
            return sum((end - first) * int(w.shape[1]) for w in self.embeddings)
        return _numel(self.method_params)

    def plan(self) -> list[dict[str, Any]]:
        return [{**s.info(), "trainable_params": self.trainable_of(s)} for s in self.stages]

    # --- hooks (run in backward) ---

    def _mask_base_rows(self, grad: torch.Tensor) -> torch.Tensor:
        if self.current is None or self.current.method != "new_embeddings" or self.rows is None:
            return grad
        first, end = self.rows
        grad = grad.clone()
        grad[:first] = 0
        grad[end:] = 0
        return grad

    def _hook_for(self, param: Any) -> Any:
        key = id(param)

        def zero_if_inactive(grad: torch.Tensor) -> torch.Tensor:
            return grad if key in self._active else torch.zeros_like(grad)

        return zero_if_inactive

    # --- callbacks ---

    def _apply(self, stage: Stage, optimizer: Any) -> None:
        active = self.params_of(stage)
        self._active = {id(p) for p in active}
        if not self.distributed:
            for param in self.all_params:
                param.requires_grad_(id(param) in self._active)
        if optimizer is not None:
            for group in optimizer.param_groups:
                configured = group.setdefault("cpt_weight_decay", group.get("weight_decay", 0.0))
                # Decoupled weight decay would shrink the frozen base rows.
                group["weight_decay"] = 0.0 if stage.method == "new_embeddings" else configured

    def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        stage = stage_at(self.stages, state.global_step)
        if self.current is not None and stage.index == self.current.index:
            return
        self._apply(stage, kw.get("optimizer"))
        resumed = self.current is None and state.global_step > stage.start
        self.current = stage
        self.run.stage = stage.index
        logger.info(
            "stage %d (%s): %s, steps %d-%d, learning rate %g",
            stage.index + 1,
            stage.name,
            stage.method,
            stage.start + 1,
            stage.end,
            stage.learning_rate,
        )
        self.run.events.emit(
            "stage",
            state.global_step,
            **stage.info(),
            trainable_params=self.trainable_of(stage),
            resumed=resumed,
        )

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        # No gradient → AdamW skips the parameter (no moment update, no weight decay).
        for param in self.all_params:
            if id(param) not in self._active:
                param.grad = None

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        stage = stage_at(self.stages, state.global_step - 1)
        if state.global_step == stage.end and stage.index < len(self.stages) - 1:
            # Each stage's end is a checkpoint to resume the next from, and a point on the chart.
            control.should_save = True
            if self.evaluates:
                control.should_evaluate = True
