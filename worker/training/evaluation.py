"""Held-out evaluation: every set scored exactly (bits per character), a budget, generation samples.

``PretrainTrainer.evaluate`` calls ``Evaluator.evaluate`` instead of HF's loop, because HF averages
per-batch mean losses, which is neither the set's token NLL nor comparable across tokenizers. Here
each set's summed next-token NLL (nats, float32) is all-reduced across ranks and reported as
``eval_<set>_loss`` (per scored token), ``_perplexity``, ``_bits_per_char`` and ``_bits_per_byte``
(the sum / ln 2 / the set's characters or UTF-8 bytes; windows: ``worker/data/eval_sets.py``).
``eval_loss``/``perplexity`` stay those of the first set (``validation`` when there is one).

Budget: each set scores a fixed prefix of its documents (``max_documents``/``max_characters``,
chosen from the text alone: ``worker/data/eval_sets.py``), so every evaluation of every run on
the set, whatever its tokenizer or schedule, scores the same characters. The measured durations
are checked at every evaluation, and an evaluation longer than 10 % of the training time before
it is a ``warning`` event (once) and a log line naming the fix.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch

from worker.data.eval_sets import EvalWindows

logger = logging.getLogger("pretrain")

BUDGET_FRACTION = 0.1
#: An evaluation shorter than this is never worth a warning, whatever the ratio.
MIN_WARN_SECONDS = 2.0
SAMPLE_SEED = 1234
LN2 = math.log(2.0)


def set_metrics(name: str, nll: float, tokens: int, chars: int, nbytes: int) -> dict[str, float]:
    loss = nll / tokens if tokens else float("nan")
    try:
        ppl = math.exp(loss)
    except OverflowError:
        ppl = float("inf")
    return {
        f"eval_{name}_loss": loss,
        f"eval_{name}_perplexity": ppl,
        f"eval_{name}_bits_per_char": nll / LN2 / chars if chars else float("nan"),
        f"eval_{name}_bits_per_byte": nll / LN2 / nbytes if nbytes else float("nan"),
    }


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


class Evaluator:
    """Scores the sets and generates the samples for one run (built once, before training)."""

    def __init__(
        self,
        sets: list[EvalWindows],
        prompts: dict[str, list[str]] | None,
        max_new_tokens: int,
        batch_size: int,
    ) -> None:
        self.sets = sets
        self.prompts = prompts or {}
        self.max_new_tokens = max_new_tokens
        self.batch_size = max(1, batch_size)
        self.last_end: float | None = None  # when the previous evaluation ended
        #: Tokens the last ``samples`` call generated (its speed, for the launch estimate).
        self.sample_tokens = 0
        self.warned = False

    # --- scoring ---------------------------------------------------------------------------

    def score(self, trainer: Any) -> dict[str, float]:
        model = trainer.model_wrapped if trainer.is_deepspeed_enabled else trainer.model
        model = model if model is not None else trainer.model
        args = trainer.args
        rank, world = args.process_index, args.world_size
        was_training = model.training
        model.eval()
        metrics: dict[str, float] = {}
        try:
            for s in self.sets:
                mine = np.arange(rank, len(s.input_ids), world)
                # Every rank runs the same number of forwards (ZeRO-3 gathers weights collectively).
                batches = math.ceil(math.ceil(len(s.input_ids) / world) / self.batch_size)
                total = torch.zeros(2, dtype=torch.float64, device=args.device)
                for b in range(batches):
                    idx = mine[b * self.batch_size : (b + 1) * self.batch_size]
                    real = len(idx) > 0
                    if not real:
                        idx = np.array([0])  # a dummy forward whose targets do not count
                    total += self._batch_nll(trainer, model, s, idx, real)
                if _distributed():
                    torch.distributed.all_reduce(total, op=torch.distributed.ReduceOp.SUM)
                nll, tokens = float(total[0]), int(total[1])
                metrics.update(set_metrics(s.name, nll, tokens, s.characters, s.bytes))
        finally:
            if was_training:
                model.train()
        if self.sets:
            first = self.sets[0].name
            metrics["eval_loss"] = metrics[f"eval_{first}_loss"]
        return metrics

    def _batch_nll(
        self, trainer: Any, model: Any, s: EvalWindows, idx: np.ndarray, real: bool
    ) -> torch.Tensor:
        device = trainer.args.device
        ids = torch.from_numpy(s.input_ids[idx]).to(device)
        att = torch.from_numpy(s.attention[idx]).to(device)
        scored = torch.from_numpy(s.scored[idx]).to(device)
        if not real:
            scored = torch.zeros_like(scored)
        with torch.no_grad(), trainer.autocast_smart_context_manager():
            logits = model(input_ids=ids, attention_mask=att.long()).logits
        logits = logits[:, :-1].float()
        target = ids[:, 1:]
        mask = scored[:, 1:]
        nll = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="none"
        ).view_as(target)
        # where, not a product: a padded position's NaN must not poison the sum.
        nll_sum = torch.where(mask, nll, torch.zeros_like(nll)).sum(dtype=torch.float64)
        count = mask.sum(dtype=torch.float64)
        return torch.stack([nll_sum, count])

    # --- samples ---------------------------------------------------------------------------

    def samples(self, trainer: Any) -> list[dict[str, Any]]:
        """Greedy and seeded-sampled continuations of every prompt (rank 0's list; the other
        ranks take part only under ZeRO-3, where generating needs every rank's shard)."""
        self.sample_tokens = 0
        if not self.prompts:
            return []
        args = trainer.args
        zero3 = _zero3(trainer)
        if args.process_index != 0 and not zero3:
            return []
        model = trainer.accelerator.unwrap_model(trainer.model)
        tok = trainer.processing_class
        was_training = model.training
        model.eval()
        out: list[dict[str, Any]] = []
        devices = [args.device] if args.device.type == "cuda" else []
        try:
            for group, prompts in self.prompts.items():
                for prompt in prompts:
                    enc = tok(prompt, return_tensors="pt").to(args.device)
                    for mode in ("greedy", "sampled"):
                        with torch.random.fork_rng(devices=devices):
                            torch.manual_seed(SAMPLE_SEED)
                            kwargs: dict[str, Any] = (
                                {"do_sample": False}
                                if mode == "greedy"
                                else {"do_sample": True, "temperature": 0.8, "top_p": 0.95}
                            )
                            with torch.no_grad(), trainer.autocast_smart_context_manager():
                                gen = model.generate(
                                    **enc,
                                    max_new_tokens=self.max_new_tokens,
                                    use_cache=True,
                                    pad_token_id=tok.pad_token_id
                                    if tok.pad_token_id is not None
                                    else tok.eos_token_id,
                                    synced_gpus=zero3,
                                    **kwargs,
                                )
                        new = gen[0, enc["input_ids"].shape[1] :]
                        self.sample_tokens += int(new.shape[0])
                        text = tok.decode(new, skip_special_tokens=True)
                        out.append({"set": group, "prompt": prompt, "text": text, "mode": mode})
        finally:
            if was_training:
                model.train()
        return out if args.process_index == 0 else []

    # --- budget ----------------------------------------------------------------------------

    def check_budget(self, started: float, ended: float, step: int) -> dict[str, Any] | None:
        """A warning (once) when this evaluation took more than 10 % of the training time since
        the previous one ended; None otherwise."""
        took = ended - started
        previous, self.last_end = self.last_end, ended
        if previous is None or self.warned:
            return None
        trained = max(started - previous, 1e-9)
        if took <= BUDGET_FRACTION * trained or took < MIN_WARN_SECONDS:
            return None
        self.warned = True
        biggest = max(self.sets, key=lambda s: len(s.input_ids)) if self.sets else None
        largest = (
            f" (largest: {biggest.name}, {biggest.characters} characters in "
            f"{len(biggest.input_ids)} windows)"
            if biggest
            else ""
        )
        message = (
            f"evaluation at step {step} took {took:.1f} s, {took / trained:.0%} of the "
            f"{trained:.1f} s of training since the previous one (budget: "
            f"{BUDGET_FRACTION:.0%}): lower the eval sets' max_characters{largest} (or "
            "eval_max_characters), raise eval_steps or lower sample_max_new_tokens"
        )
        logger.warning(message)
        return {
            "code": "eval_budget",
            "message": message,
            "eval_seconds": took,
            "train_seconds": trained,
        }


def _zero3(trainer: Any) -> bool:
    if not trainer.is_deepspeed_enabled:
        return False
    plugin = getattr(trainer.accelerator.state, "deepspeed_plugin", None)
    return bool(plugin is not None and getattr(plugin, "zero_stage", 0) == 3)
