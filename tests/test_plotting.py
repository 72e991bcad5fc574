"""Figures built by lrrt_cli.plotting, inspected through their matplotlib artists."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import matplotlib.image
import pytest
from matplotlib.colors import to_rgba
from matplotlib.legend import Legend
from matplotlib.text import Text

from lrrt_cli.analysis import analyze_curve
from lrrt_cli.errors import ConfigError, OutputError
from lrrt_cli.plotting import (
    AXES_LOSS_VS_LR,
    AXES_LOSS_VS_STEP,
    AXES_LR_VS_STEP,
    FIGURE_DPI,
    FIGURE_SIZE_INCHES,
    GID_LR_LEGEND,
    GID_PICK_PREFIX,
    GID_RAW,
    GID_SMOOTHED,
    GID_STEP_LOSS,
    GID_STEP_LR,
    GID_STOP,
    GID_VALIDATION,
    build_figure,
    format_lr,
    plot_runs,
)
from lrrt_cli.results import load_results

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def sweep_losses(lrs: list[float], *, explode_above: float | None = 0.3) -> list[float]:
    """Return a typical range-test curve: a plateau, a descent, then a blow-up."""
    losses = []
    for index, lr in enumerate(lrs):
        position = math.log10(lr) if lr > 0 else -7.0
        loss = 2.3 - 1.5 / (1.0 + math.exp(-2.5 * (position + 3.0)))
        loss += 0.02 * math.sin(7.0 * index)
        if explode_above is not None and lr > explode_above:
            loss += (lr / explode_above) ** 6
        losses.append(loss)
    return losses


def exponential_lrs(count: int, start: float = 1e-6, end: float = 10.0) -> list[float]:
    return [start * (end / start) ** (index / (count - 1)) for index in range(count)]


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(header)] + [",".join(str(cell) for cell in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_sweep(
    path: Path,
    lrs: list[float],
    losses: list[float],
    *,
    val_loss: list[float | None] | None = None,
) -> Path:
    header = ["step", "lr", "loss"]
    rows: list[list[object]] = [[step, lr, loss] for step, (lr, loss) in enumerate(zip(lrs, losses))]
    if val_loss is not None:
        header.append("val_loss")
        for row, value in zip(rows, val_loss):
            row.append("" if value is None else value)
    return write_csv(path, header, rows)


def write_run_json(folder: Path, **fields: object) -> None:
    (folder / "run.json").write_text(json.dumps(fields), encoding="utf-8")


def lines_with_gid(axes, gid: str) -> list:
    return [line for line in axes.get_lines() if line.get_gid() == gid]


def pick_markers(axes) -> list:
    return [line for line in axes.get_lines() if (line.get_gid() or "").startswith(GID_PICK_PREFIX)]


def lr_legend(figure) -> Legend:
    legends = [legend for legend in figure.findobj(Legend) if legend.get_gid() == GID_LR_LEGEND]
    assert len(legends) == 1, "expected one legend for the loss-vs-LR panel"
    return legends[0]


def legend_texts(figure) -> list[str]:
    """Return the loss-vs-LR legend's entries, with wrapped lines joined by spaces."""
    return [" ".join(text.get_text().split()) for text in lr_legend(figure).get_texts()]


def figure_texts(figure) -> str:
    return "\n".join(text.get_text() for text in figure.findobj(Text))


def panels(figure):
    """Return (loss-vs-LR axes, loss-vs-step axes, LR-vs-step twin axes)."""
    by_label = {axes.get_label(): axes for axes in figure.axes}
    return by_label[AXES_LOSS_VS_LR], by_label[AXES_LOSS_VS_STEP], by_label[AXES_LR_VS_STEP]


@pytest.fixture
def sweep_csv(tmp_path: Path) -> Path:
    """An exponential sweep of 120 rows whose loss turns NaN at row 110."""
    lrs = exponential_lrs(120)
    losses = sweep_losses(lrs)
    for row in range(110, 120):
        losses[row] = math.nan
    return write_sweep(tmp_path / "mlp" / "results.csv", lrs, losses)


def test_single_run_panels_and_labels(sweep_csv: Path) -> None:
    results = load_results(sweep_csv)
    figure = build_figure([results])
    lr_axes, step_axes, step_lr_axes = panels(figure)

    assert lr_axes.get_xscale() == "log"
    assert lr_axes.get_xlabel() == "learning rate"
    assert lr_axes.get_ylabel() == "loss"
    assert step_axes.get_xlabel() == "optimizer step"
    assert step_axes.get_ylabel() == "loss"
    assert step_lr_axes.get_ylabel() == "learning rate"
    assert step_lr_axes.get_yscale() == "log"
    assert "mlp" in figure.get_suptitle()


def test_single_run_line_counts(sweep_csv: Path) -> None:
    results = load_results(sweep_csv)
    analysis = analyze_curve(results.lr, results.loss)
    assert analysis.picks, "the test curve should give at least one suggestion"
    lr_axes, step_axes, step_lr_axes = panels(build_figure([results]))

    assert len(lines_with_gid(lr_axes, GID_RAW)) == 1
    assert len(lines_with_gid(lr_axes, GID_SMOOTHED)) == 1
    assert len(lines_with_gid(lr_axes, GID_VALIDATION)) == 0
    assert len(pick_markers(lr_axes)) == len(analysis.picks)
    assert len(lines_with_gid(lr_axes, GID_STOP)) == 1
    assert len(lr_axes.get_lines()) == 2 + len(analysis.picks) + 1
    assert len(lines_with_gid(step_axes, GID_STEP_LOSS)) == 2
    assert len(step_axes.get_lines()) == 2
    assert len(lines_with_gid(step_lr_axes, GID_STEP_LR)) == 1
    assert len(step_lr_axes.get_lines()) == 1


def test_pick_markers_sit_on_smoothed_line(sweep_csv: Path) -> None:
    results = load_results(sweep_csv)
    analysis = analyze_curve(results.lr, results.loss)
    lr_axes = panels(build_figure([results]))[0]
    smoothed_line = lines_with_gid(lr_axes, GID_SMOOTHED)[0]

    for method, pick in analysis.picks.items():
        marker = lines_with_gid(lr_axes, GID_PICK_PREFIX + method)
        assert len(marker) == 1, method
        assert list(marker[0].get_xdata()) == [pick.lr]
        assert list(marker[0].get_ydata()) == [pick.loss]
        assert smoothed_line.get_xdata()[pick.index] == pick.lr
        assert smoothed_line.get_ydata()[pick.index] == pick.loss


def test_legend_names_methods_and_stop(sweep_csv: Path) -> None:
    results = load_results(sweep_csv)
    analysis = analyze_curve(results.lr, results.loss)
    texts = legend_texts(build_figure([results]))

    assert "raw loss" in texts
    assert any(text.startswith("smoothed loss") for text in texts)
    for method, pick in analysis.picks.items():
        matching = [text for text in texts if text.startswith(method)]
        assert len(matching) == 1, method
        assert format_lr(pick.lr) in matching[0]
    default_entries = [text for text in texts if "(default)" in text]
    assert len(default_entries) == 1
    assert default_entries[0].startswith(analysis.pick_for().method)
    stop_entries = [text for text in texts if text.startswith("stop")]
    assert len(stop_entries) == 1
    assert format_lr(results.lr[110]) in stop_entries[0]


def test_rows_after_first_nan_not_drawn(tmp_path: Path) -> None:
    lrs = exponential_lrs(80)
    losses = sweep_losses(lrs, explode_above=None)
    losses[60] = math.inf
    losses[61] = math.nan
    csv_path = write_sweep(tmp_path / "results.csv", lrs, losses)
    figure = build_figure([load_results(csv_path)])
    lr_axes, step_axes, step_lr_axes = panels(figure)

    curves = lines_with_gid(lr_axes, GID_RAW) + lines_with_gid(lr_axes, GID_SMOOTHED)
    curves += step_axes.get_lines() + step_lr_axes.get_lines()
    for line in curves:
        assert len(line.get_xdata()) == 60, line.get_gid()
    assert list(lines_with_gid(lr_axes, GID_RAW)[0].get_xdata()) == lrs[:60]
    assert max(lines_with_gid(step_axes, GID_STEP_LOSS)[0].get_xdata()) == 59
    stop = lines_with_gid(lr_axes, GID_STOP)
    assert len(stop) == 1
    assert list(stop[0].get_xdata()) == [lrs[60]]
    assert "20 rows not drawn" in figure_texts(figure)


def test_stop_from_run_json(sweep_csv: Path) -> None:
    stop_lr = 1.5
    write_run_json(sweep_csv.parent, name="mlp-digits", stop={"reason": "diverged", "step": 105, "lr": stop_lr})
    figure = build_figure([load_results(sweep_csv)])
    lr_axes = panels(figure)[0]

    stop = lines_with_gid(lr_axes, GID_STOP)
    assert len(stop) == 1
    assert list(stop[0].get_xdata()) == [stop_lr]
    stop_entries = [text for text in legend_texts(figure) if text.startswith("stop")]
    assert stop_entries == [f"stop (diverged): {format_lr(stop_lr)}, step 105"]
    assert "mlp-digits" in figure.get_suptitle()


def test_no_stop_marker_without_stop(tmp_path: Path) -> None:
    lrs = exponential_lrs(80)
    csv_path = write_sweep(tmp_path / "results.csv", lrs, sweep_losses(lrs, explode_above=None))
    figure = build_figure([load_results(csv_path)])

    assert lines_with_gid(panels(figure)[0], GID_STOP) == []
    assert not any(text.startswith("stop") for text in legend_texts(figure))


def test_linear_sweep_from_zero_uses_linear_axes(tmp_path: Path) -> None:
    lrs = [0.01 * index for index in range(100)]
    losses = [2.0 - 1.5 * lr + 4.0 * max(0.0, lr - 0.7) ** 2 + 0.01 * math.sin(index) for index, lr in enumerate(lrs)]
    csv_path = write_csv(tmp_path / "linear.csv", ["loss", "lr"], [[loss, lr] for lr, loss in zip(lrs, losses)])
    lr_axes, _, step_lr_axes = panels(build_figure([load_results(csv_path)]))

    assert lr_axes.get_xscale() == "linear"
    assert step_lr_axes.get_yscale() == "linear"
    assert list(lines_with_gid(lr_axes, GID_RAW)[0].get_xdata()) == lrs


def test_validation_line_only_with_values(tmp_path: Path) -> None:
    lrs = exponential_lrs(100)
    losses = sweep_losses(lrs, explode_above=None)
    empty = write_sweep(tmp_path / "empty" / "results.csv", lrs, losses, val_loss=[None] * 100)
    sparse_values = [loss + 0.05 if index % 10 == 0 else None for index, loss in enumerate(losses)]
    sparse = write_sweep(tmp_path / "sparse" / "results.csv", lrs, losses, val_loss=sparse_values)

    empty_axes = panels(build_figure([load_results(empty)]))[0]
    sparse_figure = build_figure([load_results(sparse)])
    sparse_axes = panels(sparse_figure)[0]

    assert lines_with_gid(empty_axes, GID_VALIDATION) == []
    validation = lines_with_gid(sparse_axes, GID_VALIDATION)
    assert len(validation) == 1
    assert list(validation[0].get_xdata()) == lrs[::10]
    assert list(validation[0].get_ydata()) == [value for value in sparse_values if value is not None]
    assert "validation loss" in legend_texts(sparse_figure)


def test_exploding_tail_clips_loss_axis(tmp_path: Path) -> None:
    lrs = exponential_lrs(120)
    losses = sweep_losses(lrs, explode_above=0.3)
    assert max(losses) > 1000
    csv_path = write_sweep(tmp_path / "results.csv", lrs, losses)
    figure = build_figure([load_results(csv_path)])
    bottom, top = panels(figure)[0].get_ylim()

    assert top < 10
    assert bottom < min(losses)
    assert top > max(losses[:80])
    assert "loss axis cut off above" in figure_texts(figure)


def test_moderate_curve_not_clipped(tmp_path: Path) -> None:
    lrs = exponential_lrs(80)
    losses = sweep_losses(lrs, explode_above=None)
    csv_path = write_sweep(tmp_path / "results.csv", lrs, losses)
    figure = build_figure([load_results(csv_path)])
    bottom, top = panels(figure)[0].get_ylim()

    assert bottom < min(losses)
    assert top > max(losses)
    assert "cut off" not in figure_texts(figure)


def test_minimum_in_first_row_not_clipped(tmp_path: Path) -> None:
    rows = [[1e-5, 0.40], [1e-4, 0.45], [1e-3, 0.60], [1e-2, 1.20], [1e-1, 4.00]]
    csv_path = write_csv(tmp_path / "rising.csv", ["lr", "loss"], rows)
    figure = build_figure([load_results(csv_path)])

    assert panels(figure)[0].get_ylim()[1] > 4.0
    assert "cut off" not in figure_texts(figure)


def test_no_suggestion_reason_in_figure(tmp_path: Path) -> None:
    csv_path = write_csv(tmp_path / "short.csv", ["lr", "loss"], [[1e-4, 1.0], [1e-3, 0.9], [1e-2, 0.95]])
    results = load_results(csv_path)
    analysis = analyze_curve(results.lr, results.loss)
    assert analysis.reason, "three rows should be too few for a suggestion"
    figure = build_figure([results])
    lr_axes = panels(figure)[0]

    assert analysis.reason in figure_texts(figure).replace("\n", " ")
    assert pick_markers(lr_axes) == []
    assert list(lines_with_gid(lr_axes, GID_RAW)[0].get_ydata()) == [1.0, 0.9, 0.95]


def test_foreign_csv_without_step_column(tmp_path: Path) -> None:
    lrs = exponential_lrs(60)
    losses = sweep_losses(lrs, explode_above=None)
    csv_path = write_csv(tmp_path / "other-finder.csv", ["loss", "lr"], [[loss, lr] for lr, loss in zip(lrs, losses)])
    figure = build_figure([load_results(csv_path)])
    lr_axes, step_axes, _ = panels(figure)

    assert list(lines_with_gid(lr_axes, GID_RAW)[0].get_ydata()) == losses
    assert list(step_axes.get_lines()[0].get_xdata()) == [float(index) for index in range(60)]
    assert "other-finder" in figure.get_suptitle()


def tutorial_runs(root: Path) -> list[Path]:
    """Write a fixed-LR run and a slow and a fast linear sweep, each with a run.json name.

    The loss falls in proportion to the LR until the LR passes 0.01, then rises.
    """
    paths = []
    for name, rate in (("lr=0.0002", 0.0), ("step_rate=5", 5.0), ("step_rate=50", 50.0)):
        lrs, losses, loss = [], [], 0.9
        for step in range(400):
            lr = 2e-4 if rate == 0 else 1e-4 * (1.0 + rate * step / 40)
            loss -= 20.0 * lr * (loss - 0.3)
            if lr > 0.01:
                loss += 5.0 * (lr - 0.01)
            lrs.append(lr)
            losses.append(loss + 0.003 * math.sin(3.0 * step))
        path = write_sweep(root / name / "results.csv", lrs, losses)
        write_run_json(path.parent, name=name)
        paths.append(path)
    return paths


def test_overlay_legend_entry_per_run(tmp_path: Path) -> None:
    runs = [load_results(path) for path in tutorial_runs(tmp_path)]
    figure = build_figure(runs)
    lr_axes, step_axes, step_lr_axes = panels(figure)

    texts = legend_texts(figure)
    assert len(texts) == 3
    for text, name in zip(texts, ["lr=0.0002", "step_rate=5", "step_rate=50"]):
        assert text.startswith(name)
        assert name in figure.get_suptitle()
    # Raw and smoothed loss per sweep; the fixed-LR run has no analysis, so only its raw loss.
    assert len(step_axes.get_lines()) == 2 + 2 + 1
    assert len(step_lr_axes.get_lines()) == 3


def test_overlay_distinct_colours(tmp_path: Path) -> None:
    runs = [load_results(path) for path in tutorial_runs(tmp_path)]
    legend = lr_legend(build_figure(runs))

    colours = {to_rgba(handle.get_color()) for handle in legend.legend_handles}
    assert len(colours) == 3


def test_overlay_marks_default_pick_and_stop_only(tmp_path: Path) -> None:
    paths = tutorial_runs(tmp_path)
    write_run_json(paths[2].parent, name="step_rate=50", stop={"reason": "diverged", "step": 300, "lr": 0.0376})
    runs = [load_results(path) for path in paths]
    analyses = [analyze_curve(run.lr, run.loss) for run in runs]
    lr_axes = panels(build_figure(runs))[0]

    default_picks = [analysis.pick_for() for analysis in analyses]
    expected = [(pick.lr, pick.loss) for pick in default_picks if pick is not None]
    markers = pick_markers(lr_axes)
    assert [(marker.get_xdata()[0], marker.get_ydata()[0]) for marker in markers] == expected
    assert len(lines_with_gid(lr_axes, GID_STOP)) == 1


def test_overlay_validation_keeps_one_entry_per_run(tmp_path: Path) -> None:
    lrs = exponential_lrs(100)
    losses = sweep_losses(lrs, explode_above=None)
    validation = [loss + 0.05 if index % 10 == 0 else None for index, loss in enumerate(losses)]
    first = write_sweep(tmp_path / "a" / "results.csv", lrs, losses, val_loss=validation)
    second = write_sweep(tmp_path / "b" / "results.csv", lrs, losses)
    figure = build_figure([load_results(first), load_results(second)], labels=["with-val", "without"])

    assert len(legend_texts(figure)) == 2
    assert len(lines_with_gid(panels(figure)[0], GID_VALIDATION)) == 1


def test_labels_override_run_names(tmp_path: Path) -> None:
    runs = [load_results(path) for path in tutorial_runs(tmp_path)]
    figure = build_figure(runs, labels=["fixed", "slow", "fast"], title="batch 2048")
    texts = [text.get_text() for text in lr_legend(figure).get_texts()]

    assert [text.split("\n")[0] for text in texts] == ["fixed", "slow", "fast"]
    assert figure.get_suptitle() == "batch 2048"


def test_label_count_mismatch_rejected(sweep_csv: Path) -> None:
    with pytest.raises(ConfigError, match="2 label"):
        build_figure([load_results(sweep_csv)], labels=["a", "b"])


def test_png_output_readable(sweep_csv: Path, tmp_path: Path) -> None:
    output = tmp_path / "plots" / "curve.png"
    written = plot_runs([load_results(sweep_csv)], output)

    assert written == output
    assert output.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(output)
    width, height = FIGURE_SIZE_INCHES
    assert image.shape == (round(height * FIGURE_DPI), round(width * FIGURE_DPI), 4)
    assert sorted(path.name for path in output.parent.iterdir()) == ["curve.png"]


def test_svg_output_has_svg_root(sweep_csv: Path, tmp_path: Path) -> None:
    output = plot_runs([load_results(sweep_csv)], tmp_path / "curve.svg")
    root = ElementTree.fromstring(output.read_bytes())

    assert root.tag.endswith("svg")
    assert b"<svg" in output.read_bytes()


def test_pdf_output_has_pdf_header(sweep_csv: Path, tmp_path: Path) -> None:
    output = plot_runs([load_results(sweep_csv)], tmp_path / "curve.PDF")

    assert output.read_bytes()[:5] == b"%PDF-"


def test_unsupported_extension_rejected(sweep_csv: Path, tmp_path: Path) -> None:
    output = tmp_path / "curve.jpg"
    with pytest.raises(OutputError) as raised:
        plot_runs([load_results(sweep_csv)], output)

    message = str(raised.value)
    assert str(output) in message
    assert ".png, .svg or .pdf" in message
    assert not output.exists()


def test_lr_group_column_with_name_suffix(tmp_path: Path) -> None:
    path = tmp_path / "named.csv"
    rows = "\n".join(f"{1e-4 * 1.2 ** k!r},{2.0 - 0.01 * k},{1e-5 * 1.2 ** k!r}" for k in range(40))
    path.write_text("lr,loss,lr_group_head\n" + rows + "\n")
    results = load_results(path)
    assert results.lr_groups == ["lr_group_head"]
    assert build_figure([results]) is not None
