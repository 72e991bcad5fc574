"""The 1Cycle block built from a range test, its output formats, and schedule simulators.

``suggest_from_results`` turns a loaded results file into a ``Suggestion``: the
DeepSpeed ``OneCycle`` parameters, the matching PyTorch ``OneCycleLR`` and
``CyclicLR`` keyword arguments, every method's LR, the reasoning and warnings.
Every block is simulated step by step and checked before it is returned.

Step sizes are counted in samples, so they carry over between batch sizes: the
number of samples the test consumed before its first update at an LR of at least
``cycle_max_lr``, divided by the target global batch size. The simulators are pure
functions of the step index and import neither torch nor DeepSpeed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from lrrt_cli.analysis import (
    DEFAULT_BURN_IN_FRACTION,
    DEFAULT_METHOD,
    FALLBACK_ORDER,
    METHODS,
    CurveAnalysis,
    MethodPick,
    analyze_curve,
)
from lrrt_cli.errors import ConfigError, NoSuggestionError
from lrrt_cli.results import Results

FORMATS = ("deepspeed", "pytorch", "yaml", "json", "text")
LR_SCALING_RULES = ("none", "linear", "sqrt")
# cycle_min_lr = cycle_max_lr / min_ratio. Smith (arXiv 1803.09820) advises 10-20
# for a single cycle, 3-4 for repeated cycles; the DeepSpeed LRRT tutorial used 2.5.
DEFAULT_MIN_RATIO = 10.0
# DeepSpeed OneCycle's own defaults for the momentum (Adam beta1) cycle.
DEFAULT_MIN_MOMENTUM = 0.8
DEFAULT_MAX_MOMENTUM = 0.9
# With --total-steps N, the cycle takes this share of N (half rising, half falling)
# and the remaining steps run at or below cycle_min_lr.
CYCLE_FRACTION_OF_TOTAL = 0.9
# A target batch this many times larger or smaller than the test's gets a warning.
BATCH_RATIO_WARNING = 8.0
# LRs picked from the curve are rounded down to this many significant digits.
LR_SIGNIFICANT_DIGITS = 3
# torch.optim.lr_scheduler.OneCycleLR's default, emitted explicitly.
TORCH_FINAL_DIV_FACTOR = 1e4
# Relative slack when finding the first recorded LR at or above cycle_max_lr, so that
# 1e-4 * (1 + 5 * 1960 / 200) counts as reaching 0.005 whichever way it rounds.
LR_MATCH_TOLERANCE = 1e-9
# Half cycles shorter than this many steps get a warning, because a warm-up of a few
# steps rarely suits real training, and one update more or less in the test changes it a lot.
SHORT_HALF_CYCLE_STEPS = 10


class ScheduleCheckError(NoSuggestionError):
    """A block whose simulated schedule failed a check; it is never emitted."""


@dataclass(frozen=True)
class OneCycleParams:
    """Every parameter DeepSpeed's ``OneCycle`` scheduler reads, with step sizes in optimizer steps."""

    cycle_min_lr: float
    cycle_max_lr: float
    decay_lr_rate: float
    cycle_first_step_size: int
    cycle_second_step_size: int
    cycle_first_stair_count: int
    cycle_second_stair_count: int
    decay_step_size: int
    cycle_momentum: bool
    cycle_min_mom: float
    cycle_max_mom: float
    decay_mom_rate: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def deepspeed_block(self) -> dict[str, Any]:
        """Return the ``scheduler`` entry of a DeepSpeed config."""
        return {"scheduler": {"type": "OneCycle", "params": self.to_dict()}}


# ---------------------------------------------------------------- simulators


def deepspeed_one_cycle_lr(params: OneCycleParams, steps: int | np.ndarray) -> np.ndarray:
    """Return the LR DeepSpeed ``OneCycle`` uses for updates ``k = 0 .. steps - 1``
    (or for the update indices in ``steps`` when it is an array).

    Cycle phase (``k <= T1 + T2``): linear from ``lo`` at 0 to ``hi`` at ``T1``,
    back to ``lo`` at ``T1 + T2``. Decay phase: ``lo / (1 + rate * (k - T) / decay_step_size)``,
    or ``lo`` when the rate or the decay step size is 0. The arithmetic follows
    DeepSpeed v0.3.11 and later step for step, so ``lr[T1] == hi`` is exactly true, as it is there.
    """
    k = _step_indices(steps)
    scale = _triangle_scale(k, params.cycle_first_step_size, params.cycle_second_step_size)
    lo, hi = params.cycle_min_lr, params.cycle_max_lr
    lr = lo + (hi - lo) * scale
    total = params.cycle_first_step_size + params.cycle_second_step_size
    after = k > total
    if params.decay_lr_rate and params.decay_step_size:
        interval = (k[after] - total) / params.decay_step_size
        lr[after] = lo / (1.0 + params.decay_lr_rate * interval)
    else:
        lr[after] = lo
    return lr


def deepspeed_one_cycle_momentum(params: OneCycleParams, steps: int | np.ndarray) -> np.ndarray:
    """Return the beta1 DeepSpeed ``OneCycle`` schedules for updates ``k = 0 .. steps - 1``
    (or for the update indices in ``steps`` when it is an array).

    Cycle phase: ``hi_m - (hi_m - lo_m) * scale``, falling while the LR rises. Decay
    phase: ``hi_m * (1 + decay_mom_rate * (k - T) / decay_step_size)``, which grows.
    NOTE: DeepSpeed's constructor writes ``lo_m`` into the optimizer, so update 0
    actually trains with ``lo_m``; this returns the schedule's value, ``hi_m``.
    """
    k = _step_indices(steps)
    scale = _triangle_scale(k, params.cycle_first_step_size, params.cycle_second_step_size)
    lo, hi = params.cycle_min_mom, params.cycle_max_mom
    momentum = hi - (hi - lo) * scale
    total = params.cycle_first_step_size + params.cycle_second_step_size
    after = k > total
    if params.decay_mom_rate and params.decay_step_size:
        interval = (k[after] - total) / params.decay_step_size
        momentum[after] = hi * (1.0 + params.decay_mom_rate * interval)
    else:
        momentum[after] = hi
    return momentum


def torch_cyclic_lr(
    *, base_lr: float, max_lr: float, step_size_up: int, step_size_down: int | None = None, steps: int
) -> np.ndarray:
    """Return PyTorch ``CyclicLR``'s LR (mode ``triangular``) for updates ``k = 0 .. steps - 1``.

    For ``k <= step_size_up + step_size_down`` this equals DeepSpeed ``OneCycle``'s cycle.
    """
    down = step_size_up if step_size_down is None else step_size_down
    scale = _triangle_scale(np.arange(steps, dtype=float), step_size_up, down)
    return base_lr + (max_lr - base_lr) * scale


def _step_indices(steps: int | np.ndarray) -> np.ndarray:
    if isinstance(steps, np.ndarray):
        return steps.astype(float)
    return np.arange(steps, dtype=float)


def _triangle_scale(k: np.ndarray, up: int, down: int) -> np.ndarray:
    """Return the triangular wave in [0, 1] with period ``up + down`` and peak at ``up``."""
    total = float(up + down)
    ratio = up / total
    cycle = np.floor(1.0 + k / total)
    x = 1.0 + k / total - cycle
    rising = x <= ratio
    scale = np.empty_like(x)
    scale[rising] = x[rising] / ratio
    scale[~rising] = (x[~rising] - 1.0) / (ratio - 1.0)
    return scale


@dataclass(frozen=True)
class TorchOneCycleSchedule:
    """LR and momentum of PyTorch ``OneCycleLR`` at every update ``k = 0 .. total_steps - 1``."""

    lr: np.ndarray
    momentum: np.ndarray


def torch_one_cycle(
    *,
    max_lr: float,
    total_steps: int,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
) -> TorchOneCycleSchedule:
    """Simulate PyTorch ``OneCycleLR`` with the same phase boundaries and annealing.

    Phases end at steps ``pct_start * N - 1`` and ``N - 1`` (two-phase), or at
    ``pct_start * N - 1``, ``2 * pct_start * N - 2`` and ``N - 1`` (three-phase).
    Raises ``ValueError`` where PyTorch would fail: a non-positive ``total_steps``,
    ``pct_start`` outside [0, 1], or phase boundaries that do not increase (PyTorch
    then divides by zero at the first step).
    """
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    if not 0.0 <= pct_start <= 1.0:
        raise ValueError(f"pct_start must be in [0, 1], got {pct_start}")
    initial = max_lr / div_factor
    final = initial / final_div_factor
    up_end = float(pct_start * total_steps) - 1
    if three_phase:
        phases = [
            (up_end, initial, max_lr, max_momentum, base_momentum),
            (float(2 * pct_start * total_steps) - 2, max_lr, initial, base_momentum, max_momentum),
            (total_steps - 1, initial, final, max_momentum, max_momentum),
        ]
    else:
        phases = [
            (up_end, initial, max_lr, max_momentum, base_momentum),
            (total_steps - 1, max_lr, final, base_momentum, max_momentum),
        ]
    ends = np.array([phase[0] for phase in phases], dtype=float)
    _check_phase_ends(ends.tolist())
    steps = np.arange(total_steps, dtype=float)
    number = np.minimum(np.searchsorted(ends, steps, side="left"), len(phases) - 1)
    starts = np.concatenate(([0.0], ends[:-1]))
    fraction = (steps - starts[number]) / (ends[number] - starts[number])
    columns = np.array([phase[1:] for phase in phases], dtype=float)[number]
    anneal = _anneal_cos if anneal_strategy == "cos" else _anneal_linear
    lr = anneal(columns[:, 0], columns[:, 1], fraction)
    momentum = anneal(columns[:, 2], columns[:, 3], fraction)
    return TorchOneCycleSchedule(lr=lr, momentum=momentum)


def _check_phase_ends(ends: Sequence[float]) -> None:
    previous = 0.0
    for end in ends:
        if end <= previous:
            raise ValueError(
                f"OneCycleLR phase boundaries {list(ends)} do not increase; "
                "it needs more steps per phase"
            )
        previous = end


def _anneal_cos(start: np.ndarray, end: np.ndarray, fraction: np.ndarray) -> np.ndarray:
    return end + (start - end) / 2.0 * (np.cos(np.pi * fraction) + 1)


def _anneal_linear(start: np.ndarray, end: np.ndarray, fraction: np.ndarray) -> np.ndarray:
    return (end - start) * fraction + start


# ---------------------------------------------------------------- checks


def check_deepspeed_schedule(params: OneCycleParams, horizon: int) -> None:
    """Simulate ``params`` and raise ``ScheduleCheckError`` on a fault.

    Simulates every step of the cycle, the first decay step and step ``horizon``
    (the decay is monotone, so its extremes lie at those two steps). Checks: step
    sizes are integers >= 1; every LR is finite and positive; the LR peaks at
    ``cycle_first_step_size`` and equals ``cycle_max_lr`` there (within 1e-12
    relative); with momentum cycling, every beta1 lies in (0, 1).
    """
    for name in ("cycle_first_step_size", "cycle_second_step_size", "decay_step_size"):
        value = getattr(params, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ScheduleCheckError(f"the block's {name} is {value!r}; step sizes must be integers >= 1")
    first = params.cycle_first_step_size
    cycle_end = first + params.cycle_second_step_size
    steps = np.concatenate((np.arange(cycle_end + 2), [max(horizon, cycle_end + 2)]))
    lr = deepspeed_one_cycle_lr(params, steps)
    bad = np.flatnonzero(~np.isfinite(lr) | (lr <= 0))
    if bad.size:
        raise ScheduleCheckError(
            f"the simulated OneCycle schedule has LR {lr[bad[0]]!r} at step {int(steps[bad[0]])}; "
            "every LR must be finite and positive"
        )
    if lr[first] != lr.max() or not math.isclose(lr[first], params.cycle_max_lr, rel_tol=1e-12):
        raise ScheduleCheckError(
            f"the simulated OneCycle schedule peaks at {lr.max()!r} (step {int(steps[np.argmax(lr)])}), "
            f"not at cycle_max_lr {params.cycle_max_lr!r} at step {first}"
        )
    if params.cycle_momentum:
        momentum = deepspeed_one_cycle_momentum(params, steps)
        bad = np.flatnonzero(~np.isfinite(momentum) | (momentum <= 0) | (momentum >= 1))
        if bad.size:
            raise ScheduleCheckError(
                f"the simulated OneCycle momentum (Adam beta1) is {momentum[bad[0]]!r} at step "
                f"{int(steps[bad[0]])}; it must stay inside (0, 1), so lower decay_mom_rate or the "
                "momentum bounds"
            )


def check_torch_one_cycle(kwargs: dict[str, Any]) -> None:
    """Simulate PyTorch ``OneCycleLR`` keyword arguments and raise ``ScheduleCheckError`` on a fault."""
    try:
        schedule = torch_one_cycle(**kwargs)
    except ValueError as error:
        raise ScheduleCheckError(f"OneCycleLR arguments are invalid: {error}") from error
    if not np.all(np.isfinite(schedule.lr) & (schedule.lr > 0)):
        raise ScheduleCheckError("the simulated OneCycleLR schedule has a non-finite or non-positive LR")
    if not math.isclose(float(schedule.lr.max()), kwargs["max_lr"], rel_tol=1e-12):
        raise ScheduleCheckError(
            f"the simulated OneCycleLR schedule peaks at {schedule.lr.max()!r}, not at {kwargs['max_lr']!r}"
        )


# ---------------------------------------------------------------- the suggestion


@dataclass(frozen=True)
class StepSize:
    """Half-cycle length in optimizer steps at the target batch size, with its source."""

    steps: int
    source: str  # "samples", "update index x test batch size" or "total_steps"
    update_index: int | None = None  # first test update with LR >= the measured max LR
    samples: float | None = None  # samples the test consumed before that update


@dataclass(frozen=True)
class Suggestion:
    """A checked 1Cycle block with everything that explains it.

    ``to_dict()`` is the JSON form written to ``suggestion.json``; ``render(fmt)``
    is what ``lrrt suggest --format fmt`` prints.
    """

    params: OneCycleParams
    method: str  # the method whose pick set cycle_max_lr, or "max_lr" for an override
    measured_max_lr: float  # the LR on the test's curve, before any --lr-scaling
    analysis: CurveAnalysis
    batch_size: int
    test_batch_size: int | None
    test_batch_source: str | None
    step_size: StepSize
    lr_scaling: str
    lr_scale_factor: float
    pytorch: dict[str, dict[str, Any]]
    reasoning: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    source: str | None = None

    def deepspeed_block(self) -> dict[str, Any]:
        return self.params.deepspeed_block()

    def to_dict(self) -> dict[str, Any]:
        """Return every field, every method's LR, the reasoning and the warnings, as JSON types."""
        payload: dict[str, Any] = {
            "cycle_max_lr": self.params.cycle_max_lr,
            "cycle_min_lr": self.params.cycle_min_lr,
            "method": self.method,
            "default_method": DEFAULT_METHOD,
            "measured_max_lr": self.measured_max_lr,
            "deepspeed": self.deepspeed_block(),
            "pytorch": self.pytorch,
            "methods": _methods_dict(self.analysis),
            "method_failures": dict(self.analysis.failures),
            "descent": _descent_dict(self.analysis),
            "batch": _drop_none(
                {"target": self.batch_size, "test": self.test_batch_size, "test_source": self.test_batch_source}
            ),
            "step_size": _drop_none(asdict(self.step_size)),
            "lr_scaling": {
                "rule": self.lr_scaling,
                "factor": self.lr_scale_factor,
                "heuristic": self.lr_scaling != "none",
            },
            "analysis": _analysis_dict(self.analysis),
            "reasoning": list(self.reasoning),
            "warnings": list(self.warnings),
            "source": self.source,
        }
        return _drop_none(payload)

    def render(self, fmt: str) -> str:
        """Return the text ``lrrt suggest --format fmt`` prints, ending with a newline."""
        if fmt == "deepspeed":
            return json.dumps(self.deepspeed_block(), indent=2, allow_nan=False) + "\n"
        if fmt == "pytorch":
            return json.dumps(self.pytorch, indent=2, allow_nan=False) + "\n"
        if fmt == "yaml":
            import yaml

            return yaml.safe_dump(self.deepspeed_block(), sort_keys=False)
        if fmt == "json":
            return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"
        if fmt == "text":
            return _render_text(self)
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def suggest_from_results(
    results: Results,
    *,
    batch_size: int,
    method: str | None = None,
    min_ratio: float = DEFAULT_MIN_RATIO,
    max_lr: float | None = None,
    test_batch_size: int | None = None,
    total_steps: int | None = None,
    lr_scaling: str = "none",
    cycle_momentum: bool = True,
    cycle_min_mom: float = DEFAULT_MIN_MOMENTUM,
    cycle_max_mom: float = DEFAULT_MAX_MOMENTUM,
    decay_lr_rate: float = 0.0,
    decay_mom_rate: float = 0.0,
    burn_in_fraction: float = DEFAULT_BURN_IN_FRACTION,
) -> Suggestion:
    """Build and check the 1Cycle block for a target global ``batch_size``.

    ``method`` picks cycle_max_lr from the curve. ``None`` means ``DEFAULT_METHOD``,
    falling back through ``FALLBACK_ORDER`` with a warning. ``max_lr`` replaces the
    pick with an LR read on the test's LR axis. ``lr_scaling`` (``none``,
    ``linear``, ``sqrt``) applies a batch-size heuristic to the LRs but not to the
    step size. ``total_steps`` sizes the cycle from a known training length
    instead of from the test's samples.

    Raises:
        ConfigError: an invalid option, or a step size that cannot be measured.
        NoSuggestionError: the curve gives no LR (the message is the reason).
        ScheduleCheckError: the simulated block failed a check.
    """
    _validate_options(
        batch_size=batch_size, method=method, min_ratio=min_ratio, max_lr=max_lr,
        test_batch_size=test_batch_size, total_steps=total_steps, lr_scaling=lr_scaling,
        cycle_min_mom=cycle_min_mom, cycle_max_mom=cycle_max_mom,
        decay_lr_rate=decay_lr_rate, decay_mom_rate=decay_mom_rate,
    )
    warnings: list[str] = []
    reasoning: list[str] = []
    analysis = analyze_curve(results.lr, results.loss, burn_in_fraction=burn_in_fraction)
    chosen, measured = _choose_max_lr(analysis, method, max_lr, warnings, reasoning)

    test_batch, test_source = _test_batch_size(results, test_batch_size, warnings)
    factor = _lr_scale_factor(lr_scaling, batch_size, test_batch, reasoning, warnings)
    cycle_max_lr = measured if factor == 1.0 else _round_significant(measured * factor, 4)
    cycle_min_lr = _round_significant(cycle_max_lr / min_ratio, 12)
    reasoning.append(f"cycle_min_lr = cycle_max_lr / {min_ratio:g} (--min-ratio) = {cycle_min_lr:.6g}")

    if total_steps is not None:
        step_size = _step_size_from_total(total_steps, reasoning, warnings)
    else:
        step_size = _step_size_from_test(results, measured, batch_size, test_batch, reasoning, warnings)

    params = OneCycleParams(
        cycle_min_lr=cycle_min_lr,
        cycle_max_lr=cycle_max_lr,
        decay_lr_rate=float(decay_lr_rate),
        cycle_first_step_size=step_size.steps,
        cycle_second_step_size=step_size.steps,
        cycle_first_stair_count=0,
        cycle_second_stair_count=0,
        decay_step_size=step_size.steps,
        cycle_momentum=bool(cycle_momentum),
        cycle_min_mom=float(cycle_min_mom),
        cycle_max_mom=float(cycle_max_mom),
        decay_mom_rate=float(decay_mom_rate),
    )
    horizon = total_steps if total_steps is not None else 4 * step_size.steps
    check_deepspeed_schedule(params, horizon)
    pytorch = _pytorch_kwargs(params, total_steps, warnings)
    _batch_ratio_warning(batch_size, test_batch, warnings)
    if params.cycle_momentum:
        reasoning.append(
            "DeepSpeed cycles momentum only for Adam-family optimizers (as beta1) and then sets "
            "beta2 to 0.99; the stair counts are accepted but have no effect"
        )
    if chosen == "divergence":
        warnings.extend(note for note in analysis.notes if note.startswith("the loss never clearly"))
    if results.lr_groups:
        warnings.append(
            f"the test swept {len(results.lr_groups)} parameter groups at different LRs, but DeepSpeed's "
            "OneCycle gives every group the same LR; cycle_max_lr is group 0's LR"
        )
    return Suggestion(
        params=params,
        method=chosen,
        measured_max_lr=measured,
        analysis=analysis,
        batch_size=batch_size,
        test_batch_size=test_batch,
        test_batch_source=test_source,
        step_size=step_size,
        lr_scaling=lr_scaling,
        lr_scale_factor=factor,
        pytorch=pytorch,
        reasoning=reasoning,
        warnings=warnings,
        source=str(results.path) if results.path else None,
    )


def _validate_options(**options: Any) -> None:
    problems = []
    if not _is_positive_int(options["batch_size"]):
        problems.append(f"--batch-size must be a positive integer (the target global batch), got {options['batch_size']!r}")
    method = options["method"]
    if method is not None and method not in METHODS:
        problems.append(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    min_ratio = options["min_ratio"]
    if not _is_finite_number(min_ratio) or min_ratio <= 1:
        problems.append(f"--min-ratio must be a number above 1 (cycle_max_lr / cycle_min_lr), got {min_ratio!r}")
    max_lr = options["max_lr"]
    if max_lr is not None and (not _is_finite_number(max_lr) or max_lr <= 0):
        problems.append(f"--max-lr must be a positive finite LR, got {max_lr!r}")
    for name in ("test_batch_size", "total_steps"):
        value = options[name]
        if value is not None and not _is_positive_int(value):
            problems.append(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
    if options["lr_scaling"] not in LR_SCALING_RULES:
        problems.append(f"--lr-scaling must be one of {', '.join(LR_SCALING_RULES)}, got {options['lr_scaling']!r}")
    low, high = options["cycle_min_mom"], options["cycle_max_mom"]
    if not (_is_finite_number(low) and _is_finite_number(high) and 0 < low <= high < 1):
        problems.append(f"momentum bounds must satisfy 0 < min <= max < 1, got min {low!r} and max {high!r}")
    for name in ("decay_lr_rate", "decay_mom_rate"):
        value = options[name]
        if not _is_finite_number(value) or value < 0:
            problems.append(f"--{name.replace('_', '-')} must be a finite number >= 0, got {value!r}")
    if problems:
        raise ConfigError(problems)


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(value)


def _choose_max_lr(
    analysis: CurveAnalysis,
    method: str | None,
    max_lr: float | None,
    warnings: list[str],
    reasoning: list[str],
) -> tuple[str, float]:
    """Return the name of what set the measured max LR, and that LR."""
    if max_lr is not None:
        if analysis.reason:
            warnings.append(f"the curve gives no suggestion ({analysis.reason}); using --max-lr as given")
        _warn_max_lr_beyond_test(analysis, float(max_lr), warnings)
        reasoning.append(f"cycle_max_lr {max_lr:.6g} comes from --max-lr")
        return "max_lr", float(max_lr)
    if analysis.reason:
        raise NoSuggestionError(analysis.reason)
    pick = _pick(analysis, method, warnings)
    measured = _round_down_significant(pick.lr, LR_SIGNIFICANT_DIGITS)
    reasoning.append(
        f"cycle_max_lr {measured:.6g} is the {pick.method} pick ({pick.rule}) at row {pick.index}, "
        f"LR {pick.lr:.6g} rounded down to {LR_SIGNIFICANT_DIGITS} significant digits"
    )
    return pick.method, measured


def _warn_max_lr_beyond_test(analysis: CurveAnalysis, max_lr: float, warnings: list[str]) -> None:
    """Warn when ``--max-lr`` is above every finite LR the test trained at without diverging."""
    finite = [lr for lr, loss in zip(analysis.lr, analysis.loss) if math.isfinite(lr) and math.isfinite(loss)]
    if not finite:
        return
    largest = max(finite)
    if max_lr > largest:
        warnings.append(
            f"--max-lr {max_lr:.6g} is above the largest LR the test trained at with a finite loss "
            f"({largest:.6g}); the test says nothing about that LR"
        )
    else:
        minimum = analysis.picks.get("minimum")
        if minimum is not None and max_lr > 2 * minimum.lr:
            warnings.append(
                f"--max-lr {max_lr:.6g} is more than twice the LR of the lowest loss ({minimum.lr:.6g}); "
                "the loss was already rising there"
            )


def _pick(analysis: CurveAnalysis, method: str | None, warnings: list[str]) -> MethodPick:
    if method is not None:
        pick = analysis.picks.get(method)
        if pick is None:
            raise NoSuggestionError(
                f"the {method} method found no LR: {analysis.failures.get(method, 'no reason recorded')}; "
                "try another --method or give --max-lr"
            )
        return pick
    for name in (DEFAULT_METHOD, *FALLBACK_ORDER):
        if name in analysis.picks:
            if name != DEFAULT_METHOD:
                warnings.append(
                    f"the default method {DEFAULT_METHOD} found no LR "
                    f"({analysis.failures.get(DEFAULT_METHOD)}); using {name} instead"
                )
            return analysis.picks[name]
    raise NoSuggestionError("no suggestion method found an LR on this curve")


def _test_batch_size(
    results: Results, option: int | None, warnings: list[str]
) -> tuple[int | None, str | None]:
    """Return the test's global batch size and where it came from, or (None, None)."""
    recorded = None
    source = None
    metadata_value = (results.metadata or {}).get("global_batch_size")
    if _is_positive_int(metadata_value):
        recorded, source = int(metadata_value), "run.json global_batch_size"
    else:
        inferred = _batch_from_samples(results.samples)
        if inferred is not None:
            recorded, source = inferred, "samples column"
    if recorded is None:
        return (option, "--test-batch-size") if option is not None else (None, None)
    if option is not None and option != recorded:
        warnings.append(
            f"--test-batch-size {option} differs from the test's batch size {recorded} "
            f"read from the {source}; using {recorded}"
        )
    return recorded, source


def _batch_from_samples(samples: Sequence[float] | None) -> int | None:
    """Return the typical samples per update, when the column is usable."""
    values = _usable_samples(samples)
    if values is None:
        return None
    increments = np.diff(np.concatenate(([0.0], values)))
    typical = float(np.median(increments))
    if typical <= 0 or typical != round(typical):
        return None
    return int(typical)


def _usable_samples(samples: Sequence[float] | None) -> np.ndarray | None:
    """Return the samples column when it is finite, positive and non-decreasing, else None."""
    if not samples:
        return None
    values = np.asarray(samples, dtype=float)
    if not np.all(np.isfinite(values)) or values[0] <= 0 or np.any(np.diff(values) < 0):
        return None
    return values


def _lr_scale_factor(
    rule: str, batch_size: int, test_batch: int | None, reasoning: list[str], warnings: list[str]
) -> float:
    if rule == "none":
        if test_batch is not None and test_batch != batch_size:
            reasoning.append(
                f"LRs are as measured at the test's batch size {test_batch}; --lr-scaling linear or "
                "sqrt would apply a heuristic for the target batch"
            )
        return 1.0
    if test_batch is None:
        raise ConfigError(
            f"--lr-scaling {rule} needs the test's batch size; pass --test-batch-size "
            "(the results file has no samples column and no run.json beside it)"
        )
    ratio = batch_size / test_batch
    factor = ratio if rule == "linear" else math.sqrt(ratio)
    caveat = {
        "linear": "it is usually applied to SGD, with a warm-up",
        "sqrt": "it is often preferred for Adam-family optimizers",
    }[rule]
    reasoning.append(
        f"LRs multiplied by {factor:.6g} for batch {test_batch} -> {batch_size}, by the {rule} scaling "
        f"rule; this is a heuristic, not a law ({caveat})"
    )
    return factor


def _batch_ratio_warning(batch_size: int, test_batch: int | None, warnings: list[str]) -> None:
    if test_batch is None:
        return
    ratio = max(batch_size / test_batch, test_batch / batch_size)
    if ratio > BATCH_RATIO_WARNING:
        warnings.append(
            f"the target batch size {batch_size} differs from the test's {test_batch} by {ratio:.3g}x "
            f"(more than {BATCH_RATIO_WARNING:g}x); LRs measured at one batch size may not hold at "
            "the other, so re-run the range test at the target batch size"
        )


def _step_size_from_total(total_steps: int, reasoning: list[str], warnings: list[str]) -> StepSize:
    half = total_steps * CYCLE_FRACTION_OF_TOTAL / 2
    steps = max(1, _round_half_up(half))
    reasoning.append(
        f"step sizes from --total-steps {total_steps}: the cycle takes {CYCLE_FRACTION_OF_TOTAL:.0%} "
        f"of training, {steps} steps up and {steps} down"
    )
    if 2 * steps > total_steps:
        warnings.append(
            f"--total-steps {total_steps} is too short for a cycle of {2 * steps} steps; "
            "step sizes were rounded up to 1"
        )
    return StepSize(steps=steps, source="total_steps")


def _step_size_from_test(
    results: Results,
    measured_max_lr: float,
    batch_size: int,
    test_batch: int | None,
    reasoning: list[str],
    warnings: list[str],
) -> StepSize:
    """Measure the half cycle: samples the test took to reach the max LR, over the target batch."""
    update = _first_update_at(results.lr, measured_max_lr)
    if update is None:
        largest = max((lr for lr in results.lr if math.isfinite(lr)), default=math.nan)
        raise ConfigError(
            f"cycle_max_lr {measured_max_lr:.6g} is above the largest LR the test reached "
            f"({largest:.6g}), so the step size cannot be measured; pass --total-steps, or "
            "re-run the range test to a higher LR"
        )
    samples_column = _usable_samples(results.samples)
    if samples_column is not None:
        samples = float(samples_column[update - 1]) if update > 0 else 0.0
        source = "samples"
        derivation = f"the samples column gives {samples:.0f} samples before that update"
    else:
        if results.samples:
            warnings.append("the samples column is not finite, positive and non-decreasing; it was ignored")
        if test_batch is None:
            raise ConfigError(
                f"{results.path}: there is no usable samples column and no run.json with "
                "global_batch_size, so the step size cannot be measured; pass --test-batch-size "
                "(the test's global batch size) or --total-steps"
            )
        step_index = int(results.step[update])
        samples = float(step_index * test_batch)
        source = "update index x test batch size"
        derivation = f"update {step_index} x test batch {test_batch} = {samples:.0f} samples"
    steps = max(1, _round_half_up(samples / batch_size))
    unit = "step" if steps == 1 else "steps"
    reasoning.append(
        f"the test first used an LR >= {measured_max_lr:.6g} at row {update}; {derivation}; "
        f"{samples:.0f} / batch {batch_size} = {samples / batch_size:.6g}, so each half cycle is {steps} {unit}"
    )
    if samples / batch_size < 0.5:
        warnings.append(
            f"the test reached cycle_max_lr after {samples:.0f} samples, under half a batch of "
            f"{batch_size}; step sizes were rounded up to 1, so pass --total-steps to size the cycle"
        )
    elif steps < SHORT_HALF_CYCLE_STEPS:
        warnings.append(
            f"each half cycle is only {steps} {unit} at batch {batch_size}, because the test reached "
            f"cycle_max_lr after {samples:.0f} samples; pass --total-steps to size the cycle from "
            "your training length, or run a slower sweep"
        )
    return StepSize(steps=steps, source=source, update_index=update, samples=samples)


def _first_update_at(lr: Sequence[float], target: float) -> int | None:
    threshold = target * (1.0 - LR_MATCH_TOLERANCE)
    for index, value in enumerate(lr):
        if math.isfinite(value) and value >= threshold:
            return index
    return None


def _pytorch_kwargs(
    params: OneCycleParams, total_steps: int | None, warnings: list[str]
) -> dict[str, dict[str, Any]]:
    """Return ``OneCycleLR`` and ``CyclicLR`` keyword arguments for the same cycle, both checked."""
    first, second = params.cycle_first_step_size, params.cycle_second_step_size
    cyclic = {
        "base_lr": params.cycle_min_lr,
        "max_lr": params.cycle_max_lr,
        "step_size_up": first,
        "step_size_down": second,
        "mode": "triangular",
        "cycle_momentum": params.cycle_momentum,
        "base_momentum": params.cycle_min_mom,
        "max_momentum": params.cycle_max_mom,
    }
    lr = torch_cyclic_lr(base_lr=params.cycle_min_lr, max_lr=params.cycle_max_lr,
                         step_size_up=first, step_size_down=second, steps=first + second + 1)
    if not math.isclose(float(lr[first]), params.cycle_max_lr, rel_tol=1e-12):
        raise ScheduleCheckError(f"the simulated CyclicLR schedule does not reach {params.cycle_max_lr!r} at step {first}")

    total = total_steps if total_steps is not None else first + second
    one_cycle = {
        "max_lr": params.cycle_max_lr,
        "total_steps": total,
        "pct_start": first / total,
        "anneal_strategy": "linear",
        "three_phase": True,
        "div_factor": _round_significant(params.cycle_max_lr / params.cycle_min_lr, 12),
        "final_div_factor": TORCH_FINAL_DIV_FACTOR,
        "cycle_momentum": params.cycle_momentum,
        "base_momentum": params.cycle_min_mom,
        "max_momentum": params.cycle_max_mom,
    }
    kwargs = {"CyclicLR": cyclic}
    try:
        check_torch_one_cycle({key: one_cycle[key] for key in _TORCH_ONE_CYCLE_SIMULATED})
    except ScheduleCheckError as error:
        warnings.append(
            "the cycle is too short for OneCycleLR's phases, so only CyclicLR arguments are given "
            f"({error}); a longer cycle (a larger --total-steps, or a smaller --batch-size) gives both"
        )
        return kwargs
    return {"OneCycleLR": one_cycle, **kwargs}


_TORCH_ONE_CYCLE_SIMULATED = (
    "max_lr", "total_steps", "pct_start", "anneal_strategy", "three_phase",
    "div_factor", "final_div_factor", "base_momentum", "max_momentum",
)


def _round_half_up(value: float) -> int:
    return int(math.floor(value + 0.5))


def _round_down_significant(value: float, digits: int) -> float:
    """Round a positive ``value`` toward zero to ``digits`` significant digits."""
    exponent = math.floor(math.log10(value)) - digits + 1
    scale = 10.0 ** exponent
    rounded = math.floor(value / scale * (1 + 1e-12)) * scale
    rounded = float(f"{rounded:.{digits}g}")
    return rounded if rounded > 0 else value


def _round_significant(value: float, digits: int) -> float:
    return float(f"{value:.{digits}g}")


def _drop_none(mapping: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if value is not None}


def _methods_dict(analysis: CurveAnalysis) -> dict[str, dict[str, Any]]:
    return {
        name: {"lr": pick.lr, "loss": pick.loss, "row": pick.index, "rule": pick.rule}
        for name, pick in analysis.picks.items()
    }


def _descent_dict(analysis: CurveAnalysis) -> dict[str, Any] | None:
    if analysis.descent is None:
        return None
    first, last = analysis.descent
    return {"first_row": first, "last_row": last, "first_lr": analysis.lr[first], "last_lr": analysis.lr[last]}


def _analysis_dict(analysis: CurveAnalysis) -> dict[str, Any]:
    return _drop_none(
        {
            "rows": len(analysis.lr),
            "first_row": analysis.first_index,
            "stop_row": analysis.stop_index,
            "smoothing_window": analysis.window,
            "noise": analysis.noise,
            "notes": list(analysis.notes),
        }
    )


def _render_text(suggestion: Suggestion) -> str:
    params = suggestion.params
    lines = [
        f"1Cycle for global batch {suggestion.batch_size} (cycle_max_lr from: {suggestion.method})",
        f"  cycle_max_lr            {params.cycle_max_lr:.6g}",
        f"  cycle_min_lr            {params.cycle_min_lr:.6g}",
        f"  cycle_first_step_size   {params.cycle_first_step_size}",
        f"  cycle_second_step_size  {params.cycle_second_step_size}",
        f"  decay_lr_rate           {params.decay_lr_rate:g}",
        f"  decay_step_size         {params.decay_step_size}",
        f"  cycle_momentum          {str(params.cycle_momentum).lower()}",
        f"  cycle_min_mom           {params.cycle_min_mom:g}",
        f"  cycle_max_mom           {params.cycle_max_mom:g}",
        f"  decay_mom_rate          {params.decay_mom_rate:g}",
        "",
        "Methods (LR on the test's curve):",
    ]
    for name in METHODS:
        pick = suggestion.analysis.picks.get(name)
        if pick is not None:
            lines.append(f"  {name:<11} {pick.lr:<12.4g} {pick.rule}")
        else:
            lines.append(f"  {name:<11} {'-':<12} {suggestion.analysis.failures.get(name, '')}")
    lines += ["", "Reasoning:"]
    lines += [f"  - {line}" for line in suggestion.reasoning]
    return "\n".join(lines) + "\n"
