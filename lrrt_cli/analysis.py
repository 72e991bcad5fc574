"""Suggestion methods on a recorded loss-vs-LR curve.

The pipeline, in order:

1. Cut the curve at its first non-finite loss (``stop_index``). Rows from there on
   are never analysed.
2. Drop rows whose LR is not a positive finite number, because every slope and
   distance below is measured in log10(lr).
3. Skip a burn-in: the first ``burn_in_fraction`` (default 5 %) of the remaining rows.
4. Smooth with a centred running median, then a centred running mean. Both windows
   are odd and about 5 % of the analysed rows long (at least 3, at most
   ``MAX_WINDOW``). The median removes one-row spikes and dips, and because both
   windows are centred, the smoothed series has no lag.
5. Find the longest descending section of the smoothed loss, measured in decades
   of LR, and let each method pick one row inside it.

Every pick is a row of the curve, and its ``loss`` is the smoothed value at that
row, so a plot marker drawn at ``(pick.lr, pick.loss)`` lies on ``smoothed``.
Nothing here reads files or imports torch.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

METHODS = ("steepest", "minimum", "valley", "divergence")
# The method that sets cycle_max_lr; docs/suggestion.md gives the reasons.
DEFAULT_METHOD = "divergence"
# Order in which methods stand in when the requested default finds no LR.
FALLBACK_ORDER = ("divergence", "valley", "steepest", "minimum")

DEFAULT_BURN_IN_FRACTION = 0.05
SMOOTHING_FRACTION = 0.05
MIN_WINDOW = 3
# Caps the work of the running median at about n * MAX_WINDOW element reads.
MAX_WINDOW = 1001
MIN_POINTS = 5
# The noise estimate uses the rows before the lowest loss when there are at least this many.
MIN_NOISE_ROWS = 10
# A descent or a rise counts only when it exceeds this many noise standard deviations.
NOISE_MULTIPLE = 3.0
# The descending section starts once the loss has fallen 5 % of the section's total drop.
START_TRIM_FRACTION = 0.05
# The loss has "clearly turned up" when it rises 10 % of the descent's drop above
# the descent's lowest point (or NOISE_MULTIPLE noise deviations, whichever is larger).
RISE_FRACTION = 0.10
# The divergence pick backs off from the LR where the loss turned up by this share of
# the descending section's span in decades, and by at most DIVERGENCE_MAX_BACKOFF times.
DIVERGENCE_BACKOFF_FRACTION = 0.1
DIVERGENCE_MAX_BACKOFF = 2.0
# Tolerances in units of the largest |loss|, so that rounding in the running mean
# (about 1e-16 per add) never reads as a rise or a descent.
RELATIVE_FLOOR = 1e-9
# Rows per block in the windowed reductions, which bounds their temporary memory.
_CHUNK_ELEMENTS = 2_000_000

RULES = {
    "steepest": "steepest steady fall of the smoothed loss per decade of LR",
    "minimum": "lowest smoothed loss",
    "valley": "middle, in log10(lr), of the longest descending section",
    "divergence": "below where the loss stopped improving, by a tenth of the descent (at most 2x)",
}


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
    """The cleaned and smoothed curve, its descending section and every method's pick."""

    lr: list[float]  # the curve's LRs, as recorded
    loss: list[float]  # the curve's raw losses, as recorded
    smoothed: list[float]  # the series the methods ran on; NaN outside the analysed rows
    first_index: int  # first row after the burn-in
    stop_index: int | None  # first non-finite row, if any
    picks: dict[str, MethodPick] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # method -> why it found no LR
    descent: tuple[int, int] | None = None  # first and last row of the longest descending section
    reason: str | None = None  # why no method found an LR, when none did
    notes: list[str] = field(default_factory=list)  # rows excluded, burn-in and similar facts
    window: int = 0  # length in rows of the median and mean windows; 0 when nothing was smoothed
    noise: float = 0.0  # estimated standard deviation of the raw loss, in loss units

    def pick_for(self, method: str | None = None) -> MethodPick | None:
        """Return the pick of ``method``, or for ``None`` the first pick in ``FALLBACK_ORDER``."""
        if method is not None:
            return self.picks.get(method)
        for name in FALLBACK_ORDER:
            if name in self.picks:
                return self.picks[name]
        return None


@dataclass(frozen=True)
class _Prepared:
    """The analysed rows: original row numbers, log10(lr) and loss scaled to at most 1 in size."""

    rows: np.ndarray
    log_lr: np.ndarray
    scaled_loss: np.ndarray
    scale: float


def analyze_curve(
    lr: Sequence[float],
    loss: Sequence[float],
    *,
    burn_in_fraction: float = DEFAULT_BURN_IN_FRACTION,
) -> CurveAnalysis:
    """Clean, smooth and analyse one loss-vs-LR curve.

    ``lr`` and ``loss`` are the recorded rows in update order. ``burn_in_fraction``
    is the share of the usable rows skipped at the start, in [0, 0.5).

    When no method can pick an LR (every loss non-finite, too few usable rows, an
    LR that does not rise, or no descent), ``reason`` gives the cause and
    ``picks`` is empty. Raises ``ValueError`` only for mismatched inputs or an invalid fraction.
    """
    lr_values = np.asarray(lr, dtype=float)
    loss_values = np.asarray(loss, dtype=float)
    if lr_values.ndim != 1 or lr_values.shape != loss_values.shape:
        raise ValueError(
            f"lr and loss must be 1-D sequences of equal length, got shapes "
            f"{lr_values.shape} and {loss_values.shape}"
        )
    if not 0.0 <= burn_in_fraction < 0.5:
        raise ValueError(f"burn_in_fraction must be in [0, 0.5), got {burn_in_fraction!r}")

    notes: list[str] = []
    stop_index = _first_non_finite(loss_values)
    if stop_index is not None:
        notes.append(
            f"analysis stops at row {stop_index}, where the loss is {loss_values[stop_index]}"
        )
    prepared, first_index = _prepare_rows(lr_values, loss_values, stop_index, burn_in_fraction, notes)
    base = {
        "lr": lr_values.tolist(),
        "loss": loss_values.tolist(),
        "first_index": first_index,
        "stop_index": stop_index,
        "notes": notes,
    }

    reason = _unusable_reason(prepared, lr_values, stop_index)
    if reason is not None:
        return CurveAnalysis(
            smoothed=[math.nan] * len(lr_values),
            failures={method: reason for method in METHODS},
            reason=reason,
            **base,
        )
    return _analyze_prepared(prepared, len(lr_values), stop_index is not None, base)


def _first_non_finite(values: np.ndarray) -> int | None:
    bad = np.flatnonzero(~np.isfinite(values))
    return int(bad[0]) if bad.size else None


def _prepare_rows(
    lr: np.ndarray,
    loss: np.ndarray,
    stop_index: int | None,
    burn_in_fraction: float,
    notes: list[str],
) -> tuple[_Prepared, int]:
    end = len(lr) if stop_index is None else stop_index
    usable = np.isfinite(lr[:end]) & (lr[:end] > 0)
    excluded = end - int(usable.sum())
    if excluded:
        notes.append(
            f"{excluded} row(s) with an LR that is not positive and finite were left out, "
            "because the analysis works on log10(lr)"
        )
    rows = np.flatnonzero(usable)
    burn_in = int(burn_in_fraction * rows.size)
    if burn_in:
        notes.append(f"the first {burn_in} usable row(s) were skipped as burn-in")
    rows = rows[burn_in:]
    first_index = int(rows[0]) if rows.size else end

    scaled = loss[rows]
    largest = float(np.max(np.abs(scaled))) if rows.size else 0.0
    scale = largest if largest > 0 else 1.0
    prepared = _Prepared(rows=rows, log_lr=np.log10(lr[rows]), scaled_loss=scaled / scale, scale=scale)
    return prepared, first_index


def _unusable_reason(prepared: _Prepared, lr: np.ndarray, stop_index: int | None) -> str | None:
    """Return why the rows cannot be analysed at all, or None when they can."""
    if stop_index == 0:
        return "every loss is non-finite: the first row's loss is already non-finite"
    count = prepared.rows.size
    if count < MIN_POINTS:
        return (
            f"too few points: {count} usable row(s) after cleaning, at least {MIN_POINTS} needed; "
            "run the range test for more updates"
        )
    falls = np.flatnonzero(np.diff(prepared.log_lr) < 0)
    if falls.size:
        row = int(prepared.rows[falls[0] + 1])
        previous = int(prepared.rows[falls[0]])
        return (
            f"the LR falls from {lr[previous]:.6g} to {lr[row]:.6g} at row {row}; "
            "a range test needs an LR that rises through the run"
        )
    if prepared.log_lr[-1] == prepared.log_lr[0]:
        return f"the LR never changes (it is {lr[prepared.rows[0]]:.6g} throughout), so there is no LR range to analyse"
    return None


def _analyze_prepared(
    prepared: _Prepared, length: int, stopped: bool, base: dict
) -> CurveAnalysis:
    count = prepared.rows.size
    window = odd_window(count)
    scaled_smooth = smooth_loss(prepared.scaled_loss, window)
    # Noise is measured up to the lowest smoothed loss: past it the loss often
    # diverges, and its jumps there would inflate the estimate for the descent.
    lowest = int(np.argmin(scaled_smooth))
    region = prepared.scaled_loss[: lowest + 1] if lowest + 1 >= MIN_NOISE_ROWS else prepared.scaled_loss
    noise = estimate_noise(region)
    # A descent must beat the raw batch noise, so that a flat noisy curve never
    # yields one. A rise after the descent is judged on the smoothed curve, whose
    # noise is about the raw noise over the square root of the smoothing window.
    floor = max(NOISE_MULTIPLE * noise, RELATIVE_FLOOR)
    rise_floor = max(NOISE_MULTIPLE * noise / math.sqrt(window), RELATIVE_FLOOR)

    smoothed = np.full(length, math.nan)
    smoothed[prepared.rows] = scaled_smooth * prepared.scale
    smoothed_list = smoothed.tolist()
    shared = {"smoothed": smoothed_list, "window": window, "noise": noise * prepared.scale}

    descent = find_descent(prepared.log_lr, scaled_smooth, tolerance=max(noise, RELATIVE_FLOOR), min_drop=floor)
    if descent is None:
        reason = (
            "no descending section: the loss never fell by more than its noise "
            "(the model may already be trained, or the sweep started too high)"
        )
        return CurveAnalysis(failures={m: reason for m in METHODS}, reason=reason, **shared, **base)

    local_picks, failures = _run_methods(prepared, scaled_smooth, descent, window, rise_floor, stopped, base["notes"])
    picks = {}
    for method, local in local_picks.items():
        row = int(prepared.rows[local])
        picks[method] = MethodPick(
            method=method,
            index=row,
            lr=float(base["lr"][row]),
            loss=float(smoothed_list[row]),
            rule=RULES[method],
        )
    first, last = descent
    return CurveAnalysis(
        picks=picks,
        failures=failures,
        descent=(int(prepared.rows[first]), int(prepared.rows[last])),
        **shared,
        **base,
    )


def _run_methods(
    prepared: _Prepared,
    smoothed: np.ndarray,
    descent: tuple[int, int],
    window: int,
    rise_floor: float,
    stopped: bool,
    notes: list[str],
) -> tuple[dict[str, int], dict[str, str]]:
    """Run every method on the analysed rows; return local row picks and failure reasons."""
    log_lr = prepared.log_lr
    results: dict[str, int | str] = {
        "steepest": pick_steepest(log_lr, smoothed, descent, half_width=window // 2),
        "minimum": pick_minimum(smoothed, descent),
        "valley": pick_valley(log_lr, descent),
    }
    divergence = pick_divergence(log_lr, smoothed, descent, min_rise=rise_floor, stopped=stopped)
    if divergence.note:
        notes.append(divergence.note)
    results["divergence"] = divergence.index

    picks = {method: value for method, value in results.items() if isinstance(value, int)}
    failures = {method: value for method, value in results.items() if isinstance(value, str)}
    return picks, failures


def odd_window(count: int) -> int:
    """Return the smoothing window for ``count`` rows: odd, about 5 % of them, 3 to MAX_WINDOW."""
    target = int(round(SMOOTHING_FRACTION * count))
    window = max(MIN_WINDOW, min(MAX_WINDOW, target))
    return window if window % 2 == 1 else window + 1


def smooth_loss(loss: np.ndarray, window: int) -> np.ndarray:
    """Smooth with a centred running median, then a centred running mean of the same window.

    Near the ends the windows shrink symmetrically, so every value stays centred on
    its own row and the output has no lag. The two end rows then take Tukey's end
    rule (the median of the raw end value, its neighbour, and the straight line
    through the two neighbours), so a spike in the last row does not survive.
    """
    half = window // 2
    median = centred_reduce(loss, half, np.median)
    if loss.size >= 3:
        median[0] = np.median([loss[0], median[1], 3 * median[1] - 2 * median[2]])
        median[-1] = np.median([loss[-1], median[-2], 3 * median[-2] - 2 * median[-3]])
    return centred_reduce(median, half, np.mean)


def centred_reduce(
    values: np.ndarray, half_width: int, reducer: Callable[..., np.ndarray]
) -> np.ndarray:
    """Apply ``reducer`` over the window ``[i - h, i + h]`` of every row ``i``.

    ``h`` is ``half_width`` in the middle and shrinks to the distance to the
    nearest end near the ends, so each window stays centred on its row.
    ``reducer`` takes an array and ``axis=1``, like ``np.median``.
    """
    count = values.size
    result = values.astype(float, copy=True)
    half = min(half_width, (count - 1) // 2)
    if half <= 0:
        return result
    width = 2 * half + 1
    windows = sliding_window_view(values, width)
    rows_per_chunk = max(1, _CHUNK_ELEMENTS // width)
    for start in range(0, windows.shape[0], rows_per_chunk):
        chunk = windows[start : start + rows_per_chunk]
        result[half + start : half + start + chunk.shape[0]] = reducer(chunk, axis=1)
    for offset in range(1, half):
        result[offset] = reducer(values[None, : 2 * offset + 1], axis=1)[0]
        result[count - 1 - offset] = reducer(values[None, count - 1 - 2 * offset :], axis=1)[0]
    return result


def estimate_noise(loss: np.ndarray) -> float:
    """Estimate the standard deviation of the batch-to-batch noise in ``loss``.

    Uses the median absolute second difference, which a smooth trend barely moves:
    for white noise of deviation s, second differences have deviation s * sqrt(6),
    and 1.4826 * MAD estimates a normal deviation.
    """
    if loss.size < 3:
        return 0.0
    second = loss[2:] - 2.0 * loss[1:-1] + loss[:-2]
    return float(1.4826 * np.median(np.abs(second)) / math.sqrt(6.0))


def descending_stretches(smoothed: np.ndarray, tolerance: float) -> Iterator[tuple[int, int]]:
    """Yield ``(start, lowest)`` for each stretch where the loss never rises more than
    ``tolerance`` above its lowest value so far; ``lowest`` is that lowest row."""
    start = 0
    lowest = 0
    for index in range(1, smoothed.size):
        if smoothed[index] < smoothed[lowest]:
            lowest = index
        elif smoothed[index] > smoothed[lowest] + tolerance:
            yield start, lowest
            start = index
            lowest = index
    yield start, lowest


def find_descent(
    log_lr: np.ndarray, smoothed: np.ndarray, *, tolerance: float, min_drop: float
) -> tuple[int, int] | None:
    """Return the first and last row of the longest descending section, or None.

    A section runs from where the loss has fallen ``START_TRIM_FRACTION`` of its
    drop to its lowest row. It must fall by more than ``min_drop``. Length is the
    LR span in decades, and among equal spans the larger drop wins.
    """
    best: tuple[float, float, int, int] | None = None
    for start, lowest in descending_stretches(smoothed, tolerance):
        segment = smoothed[start : lowest + 1]
        top = float(segment.max())
        drop = top - float(smoothed[lowest])
        if drop <= min_drop:
            continue
        threshold = top - START_TRIM_FRACTION * drop
        first = start + int(np.flatnonzero(segment >= threshold)[-1])
        key = (float(log_lr[lowest] - log_lr[first]), drop, first, lowest)
        if best is None or key[:2] > best[:2]:
            best = key
    if best is None:
        return None
    return best[2], best[3]


def log_slopes(log_lr: np.ndarray, smoothed: np.ndarray, half_width: int) -> np.ndarray:
    """Return d(loss)/d(log10 lr) at each row by a centred difference over ``[i - h, i + h]``.

    The difference uses the real LR spacing and adds no lag. Rows closer than
    ``h`` to either end get NaN, because their smoothing windows are shorter and
    noisier, and so do rows whose span has no LR change (inside a staircase plateau).
    """
    count = smoothed.size
    half = max(half_width, 1)
    slopes = np.full(count, math.nan)
    if count <= 2 * half:
        return slopes
    rise = smoothed[2 * half :] - smoothed[: -2 * half]
    run = log_lr[2 * half :] - log_lr[: -2 * half]
    inner = np.full(rise.size, math.nan)
    defined = run > 0
    inner[defined] = rise[defined] / run[defined]
    slopes[half : count - half] = inner
    return slopes


def pick_steepest(
    log_lr: np.ndarray, smoothed: np.ndarray, descent: tuple[int, int], *, half_width: int
) -> int | str:
    """Pick the row inside ``descent`` whose fall per decade is steepest and steady.

    Slopes are centred differences over ``2 * half_width`` rows on each side, about
    two smoothing windows. A row's steady slope is the shallowest slope within
    ``half_width`` rows of it (at least one on each side), so one steep difference
    between noisy rows cannot win on its own. Returns a reason string when no row
    falls steadily.
    """
    slopes = log_slopes(log_lr, smoothed, 2 * max(half_width, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows give NaN, as intended
        steady = centred_reduce(slopes, max(half_width, 1), np.nanmax)
    steady[~np.isfinite(slopes)] = math.nan
    first, last = descent
    candidates = steady[first : last + 1]
    valid = np.isfinite(candidates) & (candidates < 0)
    if not valid.any():
        return "no row inside the descending section has a steady negative slope"
    masked = np.where(valid, candidates, np.inf)
    return first + int(np.argmin(masked))


def pick_minimum(smoothed: np.ndarray, descent: tuple[int, int]) -> int:
    """Pick the row of the lowest smoothed loss inside ``descent`` (its last row)."""
    first, last = descent
    return first + int(np.argmin(smoothed[first : last + 1]))


def pick_valley(log_lr: np.ndarray, descent: tuple[int, int]) -> int:
    """Pick the row nearest the middle of ``descent`` in log10(lr).

    Always a row of the section itself: for losses [2, 1, 3, 5] at LRs
    1e-4 ... 1e-1 the section is rows 0-1, and the pick is one of them.
    """
    first, last = descent
    middle = 0.5 * (log_lr[first] + log_lr[last])
    distance = np.abs(log_lr[first : last + 1] - middle)
    return first + int(np.argmin(distance))


@dataclass(frozen=True)
class DivergencePick:
    """The divergence method's row, and a note when the loss never turned up."""

    index: int
    note: str | None = None


def pick_divergence(
    log_lr: np.ndarray,
    smoothed: np.ndarray,
    descent: tuple[int, int],
    *,
    min_rise: float,
    stopped: bool,
) -> DivergencePick:
    """Pick an LR a little below where the loss stopped improving.

    The turn is the row before the first row after the descent's lowest point
    whose loss exceeds that lowest loss by ``max(min_rise, RISE_FRACTION * drop)``.
    When there is no such row, the turn is the last analysed row: the loss turned
    non-finite right after it (``stopped``) or the sweep ended while the loss was
    still low. The pick backs off from the lower of the turn and the lowest row,
    which is always the lowest row, because on a flat bottom the largest LRs may
    already be at the point of divergence. The back-off is
    ``DIVERGENCE_BACKOFF_FRACTION`` of the section's span in decades, at most a
    factor ``DIVERGENCE_MAX_BACKOFF``, so a short linear sweep is not cut in half.
    The pick is the last row of the section at or below the backed-off LR, and it
    stays below the section's lowest row. A one-row section is its own pick.
    """
    first, last = descent
    drop = float(smoothed[first] - smoothed[last])
    rise_threshold = smoothed[last] + max(min_rise, RISE_FRACTION * drop)
    risen = np.flatnonzero(smoothed[last + 1 :] > rise_threshold)
    note = None
    if risen.size:
        turn = last + int(risen[0])
    else:
        turn = smoothed.size - 1
        if not stopped:
            note = (
                "the loss never clearly turned up before the sweep ended, so the divergence "
                "pick backs off from the last LR tested; a longer sweep may allow a larger LR"
            )
    span = float(log_lr[last] - log_lr[first])
    backoff = min(DIVERGENCE_BACKOFF_FRACTION * span, math.log10(DIVERGENCE_MAX_BACKOFF))
    target = min(log_lr[turn], log_lr[last]) - backoff
    highest = max(first, last - 1)
    below = np.flatnonzero(log_lr[first : highest + 1] <= target + 1e-12)
    index = first + int(below[-1]) if below.size else first
    return DivergencePick(index=index, note=note)
