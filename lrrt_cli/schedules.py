"""LR sweeps: the learning rate of optimizer update ``k`` for every sweep type.

Each sweep is a pure function of the 0-based update index ``k``. The engine sets
``lr_at(k)`` on the optimizer before update ``k`` and records the value it reads
back. Sweeps are written as ``type`` plus ``params``, as DeepSpeed writes its
schedulers, so DeepSpeed's ``LRRangeTest`` block is valid here verbatim.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from lrrt_cli.errors import ConfigError


class Schedule(Protocol):
    """An LR sweep. ``num_steps`` is ``None`` for sweeps with no planned end."""

    @property
    def num_steps(self) -> int | None: ...

    def lr_at(self, step: int) -> float: ...


@dataclass(frozen=True)
class LRRangeTest:
    """DeepSpeed's linear range test: ``m·(1 + R·k/S)``, or ``m·(1 + R·floor(k/S))`` as a staircase.

    The parameters keep DeepSpeed's names. The values match DeepSpeed v0.3.11 and
    later, whose scheduler sets ``m`` at construction and steps once after each
    optimizer update, so update 0 trains at ``m`` and update ``k`` at the formula's value.
    """

    lr_range_test_min_lr: float
    lr_range_test_step_size: int
    lr_range_test_step_rate: float
    lr_range_test_staircase: bool = False

    @property
    def num_steps(self) -> int | None:
        return None

    def lr_at(self, step: int) -> float:
        interval = step / self.lr_range_test_step_size
        if self.lr_range_test_staircase:
            interval = math.floor(interval)
        return self.lr_range_test_min_lr * (1 + self.lr_range_test_step_rate * interval)

    def first_step_reaching(self, lr: float) -> int:
        """Return the first update index whose LR is at least ``lr``."""
        ratio = (lr / self.lr_range_test_min_lr - 1) / self.lr_range_test_step_rate
        step = max(0, math.ceil(ratio * self.lr_range_test_step_size) - 1)
        while self.lr_at(step) < lr:
            step += 1
        return step


@dataclass(frozen=True)
class _EndpointSweep:
    """A sweep from ``start_lr`` at ``k = 0`` to ``end_lr`` at ``k = N−1``, both exact."""

    start_lr: float
    end_lr: float
    num_steps: int

    def lr_at(self, step: int) -> float:
        if step <= 0:
            return self.start_lr
        if step >= self.num_steps - 1:
            return self.end_lr
        return self._interpolate(step / (self.num_steps - 1))

    def _interpolate(self, fraction: float) -> float:
        raise NotImplementedError


@dataclass(frozen=True)
class ExponentialRangeTest(_EndpointSweep):
    """``start·(end/start)^(k/(N−1))`` for ``k = 0..N−1``."""

    def _interpolate(self, fraction: float) -> float:
        return self.start_lr * (self.end_lr / self.start_lr) ** fraction


@dataclass(frozen=True)
class LinearRangeTest(_EndpointSweep):
    """``start + (end−start)·k/(N−1)`` for ``k = 0..N−1``."""

    def _interpolate(self, fraction: float) -> float:
        return self.start_lr + (self.end_lr - self.start_lr) * fraction


@dataclass(frozen=True)
class Fixed:
    """One LR for every update: a baseline to compare sweeps with."""

    lr: float

    @property
    def num_steps(self) -> int | None:
        return None

    def lr_at(self, step: int) -> float:
        return self.lr


SCHEDULE_TYPES: dict[str, type] = {
    "LRRangeTest": LRRangeTest,
    "ExponentialRangeTest": ExponentialRangeTest,
    "LinearRangeTest": LinearRangeTest,
    "Fixed": Fixed,
}

# Parameter name -> (kind, required, default). Kinds: "lr" (a float > 0), "lr0"
# (a float >= 0), "count" (an int > 0), "rate" (a float > 0), "bool".
_PARAMS: dict[str, dict[str, tuple[str, bool, Any]]] = {
    # Defaults are those of DeepSpeed's LRRangeTest class, so a partial DeepSpeed block means the same here.
    "LRRangeTest": {
        "lr_range_test_min_lr": ("lr", False, 1e-3),
        "lr_range_test_step_size": ("count", False, 2000),
        "lr_range_test_step_rate": ("rate", False, 1.0),
        "lr_range_test_staircase": ("bool", False, False),
    },
    "ExponentialRangeTest": {
        "start_lr": ("lr", True, None),
        "end_lr": ("lr", True, None),
        "num_steps": ("count", True, None),
    },
    "LinearRangeTest": {
        "start_lr": ("lr0", True, None),
        "end_lr": ("lr", True, None),
        "num_steps": ("count", True, None),
    },
    "Fixed": {"lr": ("lr", True, None)},
}


def _check_value(kind: str, value: Any, key: str) -> tuple[Any, str | None]:
    if kind == "bool":
        if isinstance(value, bool):
            return value, None
        return None, f"{key}: expected true or false, got {value!r}"
    if isinstance(value, list) and kind == "lr":
        return None, (
            f"{key}: per-group lists are not supported, got {value!r}; give one number and set "
            "each group's ratio with optimizer.groups[].lr_scale"
        )
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, f"{key}: expected a number, got {value!r}"
    if kind == "count":
        if isinstance(value, float) and not value.is_integer():
            return None, f"{key}: expected a whole number of steps, got {value!r}"
        if value < 1:
            return None, f"{key}: must be at least 1, got {value!r}"
        return int(value), None
    value = float(value)
    if not math.isfinite(value):
        return None, f"{key}: must be finite, got {value!r}"
    if kind == "lr0" and value < 0:
        return None, f"{key}: must be 0 or greater, got {value!r}"
    if kind in ("lr", "rate") and value <= 0:
        return None, f"{key}: must be greater than 0, got {value!r}"
    return value, None


def build_schedule(
    schedule_type: str, params: Mapping[str, Any], *, key_prefix: str = "scheduler"
) -> Schedule:
    """Build and validate a sweep from its DeepSpeed-style ``type`` and ``params``.

    Raises:
        ConfigError: listing every problem, each with its key path.
    """
    if schedule_type not in _PARAMS:
        raise ConfigError(
            f"{key_prefix}.type: unknown scheduler {schedule_type!r}; "
            f"valid types are {', '.join(SCHEDULE_TYPES)}"
        )
    spec = _PARAMS[schedule_type]
    problems: list[str] = []
    values: dict[str, Any] = {}
    for name in params:
        if name not in spec:
            problems.append(
                f"{key_prefix}.params.{name}: unknown parameter for {schedule_type}; "
                f"valid parameters are {', '.join(spec)}"
            )
    for name, (kind, required, default) in spec.items():
        key = f"{key_prefix}.params.{name}"
        if name not in params or params[name] is None:
            if required:
                problems.append(f"{key}: missing; {schedule_type} needs it")
            else:
                values[name] = default
            continue
        value, problem = _check_value(kind, params[name], key)
        if problem:
            problems.append(problem)
        else:
            values[name] = value

    if not problems and schedule_type in ("ExponentialRangeTest", "LinearRangeTest"):
        if values["start_lr"] >= values["end_lr"]:
            problems.append(
                f"{key_prefix}.params.start_lr: must be below end_lr, got start_lr="
                f"{values['start_lr']!r} and end_lr={values['end_lr']!r}"
            )
        if values["num_steps"] < 2:
            problems.append(
                f"{key_prefix}.params.num_steps: must be at least 2 so the sweep has a start "
                f"and an end, got {values['num_steps']!r}"
            )
    if problems:
        raise ConfigError(problems)
    return SCHEDULE_TYPES[schedule_type](**values)


def planned_steps(schedule: Schedule, *, max_steps: int | None, max_lr: float | None) -> int | None:
    """Return how many updates the run plans: the first of its limits to be reached."""
    limits = [limit for limit in (schedule.num_steps, max_steps) if limit is not None]
    if max_lr is not None:
        steps_to_max_lr = first_step_above(schedule, max_lr)
        if steps_to_max_lr is not None:
            limits.append(steps_to_max_lr)
    return min(limits) if limits else None


def first_step_above(schedule: Schedule, lr: float, *, search_limit: int = 10_000_000) -> int | None:
    """Return the first update index whose LR exceeds ``lr``, or ``None`` if the sweep never does."""
    if isinstance(schedule, Fixed):
        return 0 if schedule.lr > lr else None
    if isinstance(schedule, LRRangeTest):
        step = schedule.first_step_reaching(lr)
        while schedule.lr_at(step) <= lr:
            step += 1
        return step
    last = schedule.num_steps if schedule.num_steps is not None else search_limit
    low, high = 0, last
    # Every sweep here is non-decreasing in k, so a binary search finds the crossing.
    while low < high:
        middle = (low + high) // 2
        if schedule.lr_at(middle) > lr:
            high = middle
        else:
            low = middle + 1
    return low if low < last else None
