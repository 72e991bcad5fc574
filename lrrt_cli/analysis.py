"""Suggestion methods on a recorded loss-vs-LR curve. (Interface stub: to be implemented.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

METHODS = ("steepest", "minimum", "valley", "divergence")
DEFAULT_METHOD = "valley"


@dataclass(frozen=True)
class MethodPick:
    """The LR one suggestion method picked."""

    method: str
    index: int  # row index into the original, uncut curve
    lr: float
    loss: float  # value of the analysed (smoothed) series at the pick: the plot marker's y
    rule: str  # one-line description of the rule, for plot labels and the JSON reasoning


@dataclass(frozen=True)
class CurveAnalysis:
    lr: list[float]  # the curve's LRs, as recorded
    loss: list[float]  # the curve's raw losses, as recorded
    smoothed: list[float]  # the series the methods ran on; NaN outside the analysed rows
    first_index: int  # first row after the burn-in
    stop_index: int | None  # first non-finite row, if any
    picks: dict[str, MethodPick] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # method -> why it found no LR
    descent: tuple[int, int] | None = None  # first and last row of the longest descending section
    reason: str | None = None  # why no method found an LR, when none did


def analyze_curve(
    lr: Sequence[float], loss: Sequence[float], *, burn_in_fraction: float = 0.05
) -> CurveAnalysis:
    raise NotImplementedError
