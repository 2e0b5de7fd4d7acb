"""Divergence and dead training, judged on the logged losses (NaN/inf is judged per step in
``callbacks.py``): a loss that stays far above its best, and a run that stopped learning.

Pure and per log, so it is unit-tested on recorded loss curves. Every rank sees the same
logged (gathered) loss, so every rank takes the same decision.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    #: ``diverged`` stops the run; ``dead_training`` is a warning (once).
    code: str
    message: str


@dataclass
class LossWatch:
    #: Diverged: the loss above ``factor`` x its running minimum for ``patience`` logs in a row
    #: (0: off).
    factor: float
    patience: int
    #: A loss that moves less than this between logs counts as constant.
    flat_tolerance: float = 1e-6
    best: float | None = None
    high: int = 0
    flat: int = 0
    zero_grad: int = 0
    last: float | None = None
    warned: bool = False

    def observe(self, loss: float | None, grad_norm: float | None) -> Finding | None:
        """One logged loss (None: NaN/inf, judged elsewhere) and gradient norm."""
        if loss is None:
            return None
        finding = self._dead(loss, grad_norm)
        self.last = loss
        if self.best is None or loss < self.best:
            self.best = loss
        if self.factor > 0 and self.best > 0 and loss > self.factor * self.best:
            self.high += 1
            if self.high >= self.patience:
                return Finding(
                    "diverged",
                    f"the loss stayed above {self.factor:g} x its best ({self.best:.4g}) for "
                    f"{self.high} logs in a row (last {loss:.4g}); lower --learning_rate, keep "
                    "--max_grad_norm, or resume from an earlier checkpoint",
                )
        else:
            self.high = 0
        return finding

    def _dead(self, loss: float, grad_norm: float | None) -> Finding | None:
        constant = self.last is not None and abs(loss - self.last) <= self.flat_tolerance
        self.flat = self.flat + 1 if constant else 0
        self.zero_grad = self.zero_grad + 1 if grad_norm == 0 else 0
        if self.warned or max(self.flat, self.zero_grad) < self.patience:
            return None
        self.warned = True
        what = (
            f"the gradient norm was 0 for {self.zero_grad} logs in a row"
            if self.zero_grad >= self.patience
            else f"the loss stayed at {loss:.6g} (within {self.flat_tolerance:g}) for "
            f"{self.flat} logs in a row"
        )
        return Finding(
            "dead_training",
            f"{what}: the model is not learning (frozen weights, a learning rate of 0, or "
            "data that repeats one block?)",
        )
