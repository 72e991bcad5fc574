"""Figures of range-test curves: loss against LR, and loss and LR against optimizer step.

Figures are built as ``matplotlib.figure.Figure`` objects without pyplot, so drawing
needs no display, works under any valid ``MPLBACKEND`` (interactive ones included)
and leaves no global figure state. The suggestion markers come from
``analyze_curve`` with default arguments and sit on the smoothed series the
methods ran on. This module never imports torch.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from lrrt_cli.analysis import METHODS, CurveAnalysis, MethodPick, analyze_curve
from lrrt_cli.errors import ConfigError, InputFileError, OutputError
from lrrt_cli.results import Results, atomic_write_bytes

# File extension -> matplotlib output format.
PLOT_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
FIGURE_SIZE_INCHES = (11.0, 8.0)
FIGURE_DPI = 110

# The loss axis stops at the lowest loss plus this many times the spread of the
# curve before its minimum, so a diverging tail does not flatten the descent.
CLIP_SPREAD_FACTOR = 2.0
# The loss axis stays within [-LOSS_AXIS_BOUND, LOSS_AXIS_BOUND], because matplotlib 3.11's tick
# locators fail ("arange: cannot compute length") for limits near the largest float (about 1.8e308).
LOSS_AXIS_BOUND = 1e306

# Artist ids (``Artist.get_gid()``) that tests and callers can look up in a figure.
GID_RAW = "raw-loss"
GID_SMOOTHED = "smoothed-loss"
GID_VALIDATION = "validation-loss"
GID_PICK_PREFIX = "pick:"
GID_STOP = "stop"
GID_STEP_LOSS = "step-loss"
GID_STEP_LR = "step-lr"
GID_NOTES = "notes"
GID_LR_LEGEND = "legend:loss-vs-lr"
GID_STEP_LEGEND = "legend:loss-vs-step"

# Axes labels (``Axes.get_label()``) of the panels and of the legend column beside them.
AXES_LOSS_VS_LR = "loss-vs-lr"
AXES_LOSS_VS_STEP = "loss-vs-step"
AXES_LR_VS_STEP = "lr-vs-step"
AXES_LR_LEGEND = "legend-column-top"
AXES_STEP_LEGEND = "legend-column-bottom"

# Width of the plot column against the legend column; legend and note lines are
# wrapped to fit the legend column at the default figure size.
COLUMN_WIDTH_RATIOS = (3.3, 1.0)
LEGEND_WIDTH_CHARS = 36
# Notes run across the bottom of the figure.
NOTE_WIDTH_CHARS = 150
LEGEND_FONT_SIZE = 9

# One colour per suggestion method when a single run is drawn.
METHOD_COLORS = {
    "steepest": "tab:green",
    "minimum": "tab:red",
    "valley": "tab:purple",
    "divergence": "tab:orange",
}
METHOD_MARKERS = {"steepest": "v", "minimum": "o", "valley": "D", "divergence": "s"}
RUN_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple",
              "tab:brown", "tab:pink", "tab:gray", "tab:olive", "tab:cyan")
STOP_COLOR = "black"
PICK_MARKER_SIZE = 12.0


@dataclass(frozen=True)
class StopPoint:
    """The point where a run stopped: from ``run.json`` when recorded, else the first non-finite loss."""

    lr: float
    step: float | None
    loss: float  # the recorded loss at the stop row; NaN when non-finite or not in the file
    reason: str


@dataclass(frozen=True)
class PlottedRun:
    """One run prepared for drawing: its analysis and the rows that are drawn."""

    results: Results
    label: str
    color: str
    analysis: CurveAnalysis
    end: int  # rows [0, end) are drawn; ``end`` is the first row with a non-finite loss or LR
    stop: StopPoint | None


@dataclass(frozen=True)
class LossLimits:
    """The loss-axis range, and the largest drawn loss when it lies above the range."""

    bottom: float
    top: float
    clipped_max: float | None


@dataclass(frozen=True)
class FigureAxes:
    """The axes of the range-test figure: two panels, the twin LR axis and the legend column."""

    loss_vs_lr: Axes
    loss_vs_step: Axes
    lr_vs_step: Axes
    lr_legend: Axes
    step_legend: Axes


def format_lr(value: float) -> str:
    """Format an LR for figure labels with four significant digits.

    The methods table of ``lrrt suggest --format text`` prints the same digits.
    """
    return f"{value:.4g}"


def plot_runs(
    runs: Sequence[Results],
    output: Path,
    *,
    labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Draw ``runs`` into one figure and write it to ``output`` atomically.

    The extension of ``output`` picks the format: ``.png``, ``.svg`` or ``.pdf``.
    Missing parent folders are created. Returns ``output``.

    Raises:
        OutputError: the extension is not supported, or the file cannot be written.
        ConfigError: ``runs`` is empty or ``labels`` does not have one entry per run.
        InputFileError: no run has a row to draw.
    """
    output = Path(output)
    file_format = plot_format(output)
    figure = build_figure(runs, labels=labels, title=title)
    data = render_figure(figure, file_format)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as error:
        raise OutputError(
            f"cannot write the plot to {output}: {output.parent} is a file, not a folder; "
            "choose another output path"
        ) from error
    except OSError as error:
        raise OutputError(
            f"cannot create the folder {output.parent} for the plot: {error.strerror}; "
            "choose a writable output location"
        ) from error
    atomic_write_bytes(output, data)
    return output


def plot_format(output: Path) -> str:
    """Return the matplotlib format for ``output``'s extension, or raise ``OutputError``."""
    suffix = Path(output).suffix.lower()
    if suffix not in PLOT_FORMATS:
        found = f"extension '{suffix}'" if suffix else "no extension"
        *others, last = PLOT_FORMATS
        raise OutputError(
            f"{output}: unsupported plot file type ({found}); "
            f"use a file name ending in {', '.join(others)} or {last}"
        )
    return PLOT_FORMATS[suffix]


def render_figure(figure: Figure, file_format: str) -> bytes:
    """Render ``figure`` to bytes in ``file_format`` (png, svg or pdf) without pyplot."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=file_format, dpi=FIGURE_DPI)
    return buffer.getvalue()


def build_figure(
    runs: Sequence[Results],
    *,
    labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Build the two-panel range-test figure for one run, or an overlay of several.

    The top panel shows loss against LR, with the suggestion methods and the stop
    point marked. The bottom panel shows loss and LR against optimizer step. With
    several runs, each run gets one colour and one legend entry, and only its
    default pick (``CurveAnalysis.pick_for()``) and its stop point are marked.
    ``labels`` replaces the run names (``Results.name``) in order.

    Raises:
        ConfigError: ``runs`` is empty or ``labels`` does not have one entry per run.
        InputFileError: no run has a row to draw, because each one's first loss or LR
            is non-finite.
    """
    if not runs:
        raise ConfigError("no results to plot; pass at least one results file")
    if labels is not None and len(labels) != len(runs):
        raise ConfigError(
            f"got {len(labels)} label(s) for {len(runs)} results file(s); "
            "give exactly one label per results file, in the same order"
        )
    names = list(labels) if labels is not None else [run.name for run in runs]
    plotted = [
        prepare_run(run, name, RUN_COLORS[index % len(RUN_COLORS)])
        for index, (run, name) in enumerate(zip(runs, names))
    ]
    if all(run.end == 0 for run in plotted):
        files = ", ".join(str(run.results.path) for run in plotted)
        raise InputFileError(
            f"{files}: nothing to plot, because the loss or LR is NaN or infinite from the first "
            "data row on; re-run the range test with a lower start LR, or check the model and data for NaN"
        )

    figure = Figure(figsize=FIGURE_SIZE_INCHES, dpi=FIGURE_DPI, layout="constrained")
    axes = create_axes(figure)
    limits = loss_limits(plotted)
    if len(plotted) == 1:
        draw_single_run(axes.loss_vs_lr, plotted[0], limits)
    else:
        draw_overlay(axes.loss_vs_lr, plotted, limits)
    _style_lr_axes(axes.loss_vs_lr, plotted, limits)
    draw_step_panel(axes.loss_vs_step, axes.lr_vs_step, plotted, limits)
    add_legends(axes, single=len(plotted) == 1)
    add_notes(figure, plotted, limits)
    figure.suptitle(title or default_title(plotted), fontsize=14)
    return figure


def create_axes(figure: Figure) -> FigureAxes:
    """Lay out the two panels on the left and a legend column on the right."""
    grid = figure.add_gridspec(2, 2, width_ratios=COLUMN_WIDTH_RATIOS, height_ratios=(3, 2))
    loss_vs_lr = figure.add_subplot(grid[0, 0], label=AXES_LOSS_VS_LR)
    loss_vs_step = figure.add_subplot(grid[1, 0], label=AXES_LOSS_VS_STEP)
    lr_vs_step = loss_vs_step.twinx()
    lr_vs_step.set_label(AXES_LR_VS_STEP)
    lr_legend = figure.add_subplot(grid[0, 1], label=AXES_LR_LEGEND)
    step_legend = figure.add_subplot(grid[1, 1], label=AXES_STEP_LEGEND)
    lr_legend.set_axis_off()
    step_legend.set_axis_off()
    return FigureAxes(loss_vs_lr, loss_vs_step, lr_vs_step, lr_legend, step_legend)


def add_legends(axes: FigureAxes, *, single: bool) -> None:
    """Put each panel's legend at the top of its cell in the legend column."""
    handles, labels = axes.loss_vs_lr.get_legend_handles_labels()
    lr_legend = axes.lr_legend.legend(
        handles, [_wrap(label) for label in labels], loc="upper left", borderaxespad=0.0,
        fontsize=LEGEND_FONT_SIZE, title=None if single else "runs",
    )
    lr_legend.set_gid(GID_LR_LEGEND)
    has_validation = bool(_lines_with_gid(axes.loss_vs_lr, GID_VALIDATION))
    key = _step_panel_key(single, has_validation)
    step_legend = axes.step_legend.legend(
        handles=key, loc="upper left", borderaxespad=0.0, fontsize=LEGEND_FONT_SIZE, title="key",
    )
    step_legend.set_gid(GID_STEP_LEGEND)


def _lines_with_gid(axes: Axes, gid: str) -> list[Line2D]:
    return [line for line in axes.get_lines() if line.get_gid() == gid]


def _wrap(text: str) -> str:
    """Wrap each line of ``text`` to the legend column, indenting continuation lines."""
    return "\n".join(
        textwrap.fill(line, LEGEND_WIDTH_CHARS, subsequent_indent="  ") for line in text.split("\n")
    )


def default_title(plotted: Sequence[PlottedRun]) -> str:
    if len(plotted) == 1:
        return f"LR range test: {plotted[0].label}"
    return "LR range tests: " + ", ".join(run.label for run in plotted)


def prepare_run(results: Results, label: str, color: str) -> PlottedRun:
    """Analyse ``results`` and find its drawn rows and its stop point."""
    analysis = analyze_curve(results.lr, results.loss)
    end = first_nonfinite_row(results)
    return PlottedRun(
        results=results,
        label=label,
        color=color,
        analysis=analysis,
        end=end,
        stop=find_stop(results, end),
    )


def first_nonfinite_row(results: Results) -> int:
    """Return the first row whose loss or LR is NaN or infinite, or the row count."""
    for row, (lr, loss) in enumerate(zip(results.lr, results.loss)):
        if not (math.isfinite(lr) and math.isfinite(loss)):
            return row
    return len(results)


def find_stop(results: Results, end: int) -> StopPoint | None:
    """Return the stop recorded in ``run.json``, else the first non-finite row, else ``None``.

    ``end`` is the first row with a non-finite loss or LR. A row whose LR is
    non-finite cannot be placed on the LR axis, so it gives no stop point.
    """
    recorded = (results.metadata or {}).get("stop")
    if isinstance(recorded, dict) and _is_finite_number(recorded.get("lr")):
        step = recorded.get("step")
        step = float(step) if _is_finite_number(step) else None
        reason = str(recorded.get("reason") or "stopped").replace("_", " ")
        return StopPoint(lr=float(recorded["lr"]), step=step, loss=_loss_at_step(results, step), reason=reason)
    if end < len(results) and math.isfinite(results.lr[end]):
        return StopPoint(lr=results.lr[end], step=results.step[end], loss=math.nan,
                         reason="non-finite loss")
    return None


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _loss_at_step(results: Results, step: float | None) -> float:
    if step is None:
        return math.nan
    for row_step, loss in zip(results.step, results.loss):
        if row_step == step:
            return loss if math.isfinite(loss) else math.nan
    return math.nan


def drawn_losses(run: PlottedRun) -> list[float]:
    """Return every finite loss value drawn for ``run``: raw, smoothed and validation."""
    rows = range(run.end)
    values = [run.results.loss[row] for row in rows]
    values += [value for value in _smoothed(run)[: run.end] if math.isfinite(value)]
    validation = run.results.val_loss
    if validation is not None:
        values += [validation[row] for row in rows if math.isfinite(validation[row])]
    return values


def loss_limits(plotted: Sequence[PlottedRun]) -> LossLimits:
    """Choose a loss-axis range that keeps each run's descent readable.

    For each run the range ends at ``lowest + CLIP_SPREAD_FACTOR * spread``, where
    ``spread`` is the difference between the highest raw loss before the lowest
    one and the lowest. A run whose losses all fit, or whose lowest raw loss is
    in its first row, is not clipped.
    """
    bottoms, tops, highest = [], [], -math.inf
    for run in plotted:
        values = drawn_losses(run)
        if not values:
            continue
        lowest, run_highest = min(values), max(values)
        bottoms.append(lowest)
        tops.append(min(run_highest, _clip_level(run.results.loss[: run.end], lowest)))
        highest = max(highest, run_highest)
    if not bottoms:
        return LossLimits(bottom=0.0, top=1.0, clipped_max=None)
    bottom, top = min(bottoms), max(tops)
    if top <= bottom:
        spread = max(abs(bottom) * 0.1, 1e-3)
        # Near the largest float, widen the range downwards so that it stays finite.
        if math.isfinite(bottom + spread):
            top = bottom + spread
        else:
            bottom, top = bottom - spread, bottom
    clipped_max = highest if highest > top else None
    return LossLimits(bottom=bottom, top=top, clipped_max=clipped_max)


def _clip_level(raw: Sequence[float], lowest: float) -> float:
    if not raw:
        return math.inf
    minimum_row = min(range(len(raw)), key=raw.__getitem__)
    spread = max(raw[: minimum_row + 1]) - lowest
    if spread <= 0:
        return math.inf
    return lowest + CLIP_SPREAD_FACTOR * spread


def _smoothed(run: PlottedRun) -> list[float]:
    smoothed = list(run.analysis.smoothed)
    if len(smoothed) != len(run.results):
        return [math.nan] * len(run.results)
    return smoothed


def use_log_lr_axis(plotted: Sequence[PlottedRun]) -> bool:
    """Return True when every drawn LR is positive, so a log axis can show all of them."""
    values = [lr for run in plotted for lr in run.results.lr[: run.end]]
    values += [run.stop.lr for run in plotted if run.stop is not None]
    return bool(values) and min(values) > 0


def draw_single_run(axes: Axes, run: PlottedRun, limits: LossLimits) -> None:
    """Draw one run's loss against LR with every method's pick and the stop point."""
    lr = run.results.lr[: run.end]
    smoothed = _smoothed(run)[: run.end]
    has_smoothed = any(math.isfinite(value) for value in smoothed)
    axes.plot(lr, run.results.loss[: run.end], color=run.color, alpha=0.3 if has_smoothed else 1.0,
              linewidth=1.0 if has_smoothed else 2.0, label="raw loss", gid=GID_RAW)
    if has_smoothed:
        axes.plot(lr, smoothed, color=run.color, linewidth=2.2, label="smoothed loss (analysed)",
                  gid=GID_SMOOTHED)
    _draw_validation(axes, run, color="tab:cyan", label="validation loss")
    default_pick = run.analysis.pick_for()
    for pick, size in _pick_marker_sizes(run.analysis, default_pick):
        is_default = pick == default_pick
        _draw_pick(axes, pick, color=METHOD_COLORS.get(pick.method, "tab:gray"),
                   marker=METHOD_MARKERS.get(pick.method, "o"),
                   label=_pick_label(pick, is_default=is_default), size=size, is_default=is_default)
    if run.stop is not None:
        _draw_stop(axes, run.stop, limits, color=STOP_COLOR, label=_stop_label(run.stop))


def draw_overlay(axes: Axes, plotted: Sequence[PlottedRun], limits: LossLimits) -> None:
    """Draw several runs' loss against LR, each with its default pick and its stop point.

    The default pick is ``CurveAnalysis.pick_for()``: the default method's pick, or
    the first fallback method's when the default method found no LR.
    """
    for run in plotted:
        lr = run.results.lr[: run.end]
        smoothed = _smoothed(run)[: run.end]
        if any(math.isfinite(value) for value in smoothed):
            axes.plot(lr, run.results.loss[: run.end], color=run.color, alpha=0.25,
                      linewidth=0.8, gid=GID_RAW)
            axes.plot(lr, smoothed, color=run.color, linewidth=2.0, label=_overlay_label(run),
                      gid=GID_SMOOTHED)
        else:
            axes.plot(lr, run.results.loss[: run.end], color=run.color, linewidth=1.5,
                      label=_overlay_label(run), gid=GID_RAW)
        _draw_validation(axes, run, color=run.color, label=None)
        pick = run.analysis.pick_for()
        if pick is not None:
            _draw_pick(axes, pick, color=run.color, marker="o", label=None, size=PICK_MARKER_SIZE - 2.0)
        if run.stop is not None:
            _draw_stop(axes, run.stop, limits, color=run.color, label=None)


def _overlay_label(run: PlottedRun) -> str:
    pick = run.analysis.pick_for()
    parts = [f"{pick.method} {format_lr(pick.lr)}" if pick is not None else "no suggestion"]
    if run.stop is not None:
        parts.append(f"stop {format_lr(run.stop.lr)}")
    return f"{run.label}\n  " + ", ".join(parts)


def _step_panel_key(single: bool, has_validation: bool) -> list[Line2D]:
    """Return legend handles that explain the line styles and, for overlays, the markers."""
    key = [
        Line2D([], [], color="dimgray", alpha=0.4, linewidth=1.0, label="raw loss (left axis)"),
        Line2D([], [], color="dimgray", linewidth=1.8, label="smoothed loss (left axis)"),
        Line2D([], [], color="dimgray", linestyle="--", linewidth=1.4,
               label="learning rate (right axis)"),
    ]
    if not single and has_validation:
        key.append(Line2D([], [], color="dimgray", linestyle=":", marker=".", linewidth=1.4,
                          label="top panel: validation loss"))
    if not single:
        key += [
            Line2D([], [], linestyle="none", marker="o", color="dimgray", markeredgecolor="black",
                   label="top panel: default pick\n(suggested max LR)"),
            Line2D([], [], linestyle="none", marker="X", color="dimgray", markeredgecolor="black",
                   label="top panel: stop point"),
        ]
    return key


def _draw_validation(axes: Axes, run: PlottedRun, *, color: str, label: str | None) -> None:
    """Draw the recorded validation losses of the drawn rows, skipping empty cells."""
    validation = run.results.val_loss
    if validation is None:
        return
    rows = [row for row in range(run.end) if math.isfinite(validation[row])]
    if not rows:
        return
    axes.plot([run.results.lr[row] for row in rows], [validation[row] for row in rows],
              color=color, linestyle=":", marker=".", markersize=4, linewidth=1.4,
              label=label, gid=GID_VALIDATION)


def _pick_marker_sizes(
    analysis: CurveAnalysis, default_pick: MethodPick | None
) -> list[tuple[MethodPick, float]]:
    """Pair each pick with a marker size, the default pick first.

    A pick on the same row as an earlier one gets a smaller marker, so that
    picks at the same point nest visibly instead of hiding each other.
    """
    def order(pick: MethodPick) -> tuple[bool, int]:
        position = METHODS.index(pick.method) if pick.method in METHODS else len(METHODS)
        return (pick != default_pick, position)

    sized, earlier_at_row = [], {}
    for pick in sorted(analysis.picks.values(), key=order):
        count = earlier_at_row.get(pick.index, 0)
        sized.append((pick, PICK_MARKER_SIZE - 3.0 * count))
        earlier_at_row[pick.index] = count + 1
    return sized


def _pick_label(pick: MethodPick, *, is_default: bool) -> str:
    default = " (default)" if is_default else ""
    return f"{pick.method}{default}: {format_lr(pick.lr)}\n  {pick.rule}"


def _draw_pick(
    axes: Axes,
    pick: MethodPick,
    *,
    color: str,
    marker: str,
    label: str | None,
    size: float,
    is_default: bool = False,
) -> None:
    """Mark ``pick``; smaller markers and then the default pick are drawn on top."""
    zorder = 5.0 + 20.0 / size + (0.5 if is_default else 0.0)
    axes.plot([pick.lr], [pick.loss], linestyle="none", marker=marker, markersize=size,
              color=color, markeredgecolor="black", zorder=zorder, label=label,
              gid=GID_PICK_PREFIX + pick.method)


def _stop_label(stop: StopPoint) -> str:
    # Two lines, so the legend column never breaks the label inside "step N".
    step = f", step {stop.step:g}" if stop.step is not None else ""
    return f"stop ({stop.reason}):\n{format_lr(stop.lr)}{step}"


def _draw_stop(axes: Axes, stop: StopPoint, limits: LossLimits, *, color: str, label: str | None) -> None:
    """Mark the stop point; a non-finite or clipped loss is drawn at the top of the loss axis."""
    loss = stop.loss if math.isfinite(stop.loss) else limits.top
    loss = min(max(loss, limits.bottom), limits.top)
    axes.plot([stop.lr], [loss], linestyle="none", marker="X", markersize=11, color=color,
              markeredgecolor="black", zorder=10, label=label, gid=GID_STOP)


def _style_lr_axes(axes: Axes, plotted: Sequence[PlottedRun], limits: LossLimits) -> None:
    axes.set_xscale("log" if use_log_lr_axis(plotted) else "linear")
    axes.set_xlabel("learning rate")
    axes.set_ylabel("loss")
    axes.set_ylim(*_padded(limits))
    axes.grid(True, which="major", alpha=0.3)
    axes.set_title("loss against learning rate", fontsize=11)


def _padded(limits: LossLimits) -> tuple[float, float]:
    """Return the loss-axis limits with 5 % padding, kept within ``LOSS_AXIS_BOUND``."""
    # Each end is scaled before subtracting, so the pad stays finite for losses near the largest float.
    pad = 0.05 * limits.top - 0.05 * limits.bottom
    bottom = min(max(limits.bottom - pad, -LOSS_AXIS_BOUND), 0.9 * LOSS_AXIS_BOUND)
    top = max(min(limits.top + pad, LOSS_AXIS_BOUND), -0.9 * LOSS_AXIS_BOUND)
    return bottom, top


def draw_step_panel(
    axes: Axes, lr_axes: Axes, plotted: Sequence[PlottedRun], limits: LossLimits
) -> None:
    """Draw loss on ``axes`` and LR (dashed) on its twin ``lr_axes`` against optimizer step."""
    single = len(plotted) == 1
    for run in plotted:
        steps = run.results.step[: run.end]
        smoothed = _smoothed(run)[: run.end]
        if any(math.isfinite(value) for value in smoothed):
            axes.plot(steps, run.results.loss[: run.end], color=run.color,
                      alpha=0.3 if single else 0.2, linewidth=1.0 if single else 0.8,
                      gid=GID_STEP_LOSS)
            axes.plot(steps, smoothed, color=run.color, linewidth=1.8, gid=GID_STEP_LOSS)
        else:
            axes.plot(steps, run.results.loss[: run.end], color=run.color, linewidth=1.0,
                      gid=GID_STEP_LOSS)
        lr_color = "tab:gray" if single else run.color
        lr_axes.plot(steps, run.results.lr[: run.end], color=lr_color, linestyle="--",
                     linewidth=1.4, gid=GID_STEP_LR)
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("loss")
    axes.set_ylim(*_padded(limits))
    axes.grid(True, alpha=0.3)
    lr_values = [lr for run in plotted for lr in run.results.lr[: run.end]]
    if lr_values and min(lr_values) > 0:
        lr_axes.set_yscale("log")
    lr_axes.set_ylabel("learning rate")
    axes.set_title("loss and learning rate against optimizer step", fontsize=11)


def add_notes(figure: Figure, plotted: Sequence[PlottedRun], limits: LossLimits) -> None:
    """Write what the panels do not show across the bottom of ``figure``.

    The notes name a clipped loss axis, rows not drawn and runs without a
    suggestion. The constrained layout reserves room for them below the panels.
    """
    notes = []
    if limits.clipped_max is not None:
        notes.append(
            f"loss axis cut off above {limits.top:.3g}; the largest loss is {limits.clipped_max:.3g}"
        )
    for run in plotted:
        prefix = f"{run.label}: " if len(plotted) > 1 else ""
        hidden = len(run.results) - run.end
        if hidden:
            rows = "1 row" if hidden == 1 else f"{hidden} rows"
            first = run.results.lr[run.end]
            notes.append(
                f"{prefix}{rows} not drawn: the loss or LR is non-finite from data row "
                f"{run.end + 1} (lr {format_lr(first)}) on"
            )
        if run.analysis.reason:
            notes.append(f"{prefix}no suggestion: {run.analysis.reason}")
    if notes:
        wrapped = "\n".join(
            textwrap.fill(note, NOTE_WIDTH_CHARS, subsequent_indent="  ") for note in notes
        )
        label = figure.supxlabel(wrapped, x=0.01, ha="left", fontsize=LEGEND_FONT_SIZE,
                                 color="darkred")
        label.set_gid(GID_NOTES)
