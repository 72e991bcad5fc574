"""Loss smoothing and the stop rules of a running sweep, fed one loss at a time.

The divergence rule
-------------------
After a burn-in, the run stops as ``diverged`` when the smoothed loss rises too
far above the best smoothed loss seen since the burn-in ended:

* while the best smoothed loss is positive: ``smoothed > factor · best``, the
  common rule of fastai, Lightning and torch-lr-finder (factor 4 by default);
* when the best is zero or negative: ``smoothed − best > (factor − 1) · scale``,
  where ``scale`` is the larger of ``|best|`` and how far the smoothed loss has
  fallen from its value at the end of the burn-in. This keeps the rule valid for
  losses of any sign (negative log-likelihoods, for example) and unchanged when
  every loss is multiplied by a positive constant.

The best loss is only tracked after the burn-in, because the first smoothed
values follow single noisy batches and a lucky low batch would otherwise make
the threshold far too tight. A NaN or infinite loss stops the run at once,
whatever the burn-in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_SMOOTHING_BETA = 0.98
DEFAULT_DIVERGENCE_FACTOR = 4.0
DEFAULT_BURN_IN_FRACTION = 0.05
DEFAULT_MIN_BURN_IN_STEPS = 10

STOP_REASONS = (
    "diverged",
    "non_finite_loss",
    "max_steps",
    "max_lr",
    "end_of_schedule",
    "interrupted",
    "error",
)


class LossSmoother:
    """Bias-corrected exponential moving average of the loss.

    ``v_t = β·v_{t−1} + (1−β)·loss_t`` with ``v_0 = 0``; the smoothed value is
    ``v_t / (1 − β^t)``, so the first smoothed value equals the first loss.
    """

    def __init__(self, beta: float = DEFAULT_SMOOTHING_BETA):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"smoothing beta must be in [0, 1), got {beta!r}")
        self.beta = beta
        self._average = 0.0
        self._count = 0

    def update(self, loss: float) -> float:
        self._count += 1
        self._average = self.beta * self._average + (1.0 - self.beta) * loss
        return self._average / (1.0 - self.beta**self._count)


def smooth_losses(losses: Iterable[float], beta: float = DEFAULT_SMOOTHING_BETA) -> list[float]:
    """Return the bias-corrected EMA of ``losses`` (see ``LossSmoother``)."""
    smoother = LossSmoother(beta)
    return [smoother.update(loss) for loss in losses]


def burn_in_steps(planned_steps: int | None, fraction: float, min_steps: int) -> int:
    """Return the number of updates during which the divergence rule does not fire."""
    if planned_steps is None:
        return min_steps
    return max(min_steps, math.ceil(fraction * planned_steps))


@dataclass(frozen=True)
class DivergenceRule:
    """Settings of the divergence rule; ``factor=None`` turns it off."""

    factor: float | None = DEFAULT_DIVERGENCE_FACTOR
    burn_in_steps: int = DEFAULT_MIN_BURN_IN_STEPS


@dataclass(frozen=True)
class StepRecord:
    """The monitor's verdict on one update's loss."""

    smoothed_loss: float
    best_loss: float | None  # best smoothed loss since the burn-in, None during it
    stop_reason: str | None  # "diverged", "non_finite_loss" or None


class DivergenceMonitor:
    """Smooths each update's loss and decides whether the run must stop."""

    def __init__(self, rule: DivergenceRule, beta: float = DEFAULT_SMOOTHING_BETA):
        self.rule = rule
        self.smoother = LossSmoother(beta)
        self.num_updates = 0
        self.best_loss: float | None = None
        self.best_step: int | None = None
        self._reference: float | None = None  # smoothed loss when the burn-in ended

    def update(self, loss: float) -> StepRecord:
        step = self.num_updates
        self.num_updates += 1
        if not math.isfinite(loss):
            return StepRecord(math.nan, self.best_loss, "non_finite_loss")

        smoothed = self.smoother.update(loss)
        if step < self.rule.burn_in_steps:
            return StepRecord(smoothed, None, None)

        if self._reference is None:
            self._reference = smoothed
        if self.best_loss is None or smoothed < self.best_loss:
            self.best_loss = smoothed
            self.best_step = step

        reason = "diverged" if self._is_diverged(smoothed) else None
        return StepRecord(smoothed, self.best_loss, reason)

    def _is_diverged(self, smoothed: float) -> bool:
        factor = self.rule.factor
        best = self.best_loss
        if factor is None or best is None:
            return False
        if best > 0:
            return smoothed > factor * best
        assert self._reference is not None
        scale = max(abs(best), self._reference - best)
        if scale == 0:
            return False
        return smoothed - best > (factor - 1.0) * scale
