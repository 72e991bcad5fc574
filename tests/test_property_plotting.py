"""Property test: any curve written as a real CSV can be plotted and suggested from, or is rejected cleanly.

Curves mix NaN, infinite, negative, huge, tiny and constant losses, single rows,
and LR columns that are constant or start at zero. ``build_figure`` must return
a figure whose panels have finite axis limits, or raise ``InputFileError`` when
no row can be drawn. ``lrrt suggest`` must print a complete block (exit 0) or
give a reason (exit 3).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from lrrt_cli.cli import app
from lrrt_cli.errors import InputFileError
from lrrt_cli.plotting import build_figure, first_nonfinite_row, render_figure
from lrrt_cli.results import format_value, load_results

runner = CliRunner()

loss_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e300, max_value=1e300),
    st.floats(min_value=-1e-300, max_value=1e-300),
    st.sampled_from([0.0, 1.0, -1.0, -50.0, math.nan, math.inf, -math.inf]),
)


@st.composite
def lr_columns(draw, count: int) -> list[float]:
    kind = draw(st.sampled_from(["log", "log", "constant", "linear-from-zero", "falling"]))
    if kind == "constant":
        return [draw(st.sampled_from([1e-3, 0.0, 5.0]))] * count
    if kind == "linear-from-zero":
        return np.linspace(0.0, draw(st.floats(min_value=1e-6, max_value=10.0)), count).tolist()
    start = draw(st.floats(min_value=-12, max_value=2))
    span = draw(st.floats(min_value=0, max_value=10))
    lr = np.logspace(start, start + span, count).tolist()
    return lr[::-1] if kind == "falling" else lr


@st.composite
def loss_columns(draw, count: int) -> list[float]:
    kind = draw(st.sampled_from(["random", "constant", "sweep", "sweep"]))
    if kind == "random":
        return draw(st.lists(loss_values, min_size=count, max_size=count))
    if kind == "constant":
        return [draw(loss_values)] * count
    # A fall then a rise at any scale and sign, with a few replaced rows and maybe a NaN tail.
    scale = draw(st.sampled_from([1e-300, 1e-6, 1.0, 1e6, 1e300]))
    offset = draw(st.sampled_from([0.0, -1.0, 1.0])) * scale
    x = np.linspace(-1, 1, count)
    loss = (offset + scale * (-np.tanh(4 * x) + np.exp(3 * x)) / 4).tolist()
    for _ in range(draw(st.integers(0, 2))):
        loss[draw(st.integers(0, count - 1))] = draw(loss_values)
    if draw(st.booleans()):
        tail = draw(st.integers(0, count - 1))
        loss[tail:] = [math.nan] * (count - tail)
    return loss


@st.composite
def curves(draw) -> tuple[list[float], list[float], bool]:
    count = draw(st.one_of(st.just(1), st.integers(min_value=2, max_value=8), st.integers(min_value=9, max_value=80)))
    return draw(lr_columns(count)), draw(loss_columns(count)), draw(st.booleans())


def write_csv(path: Path, lr: list[float], loss: list[float], with_samples: bool) -> Path:
    header = "step,lr,loss,samples" if with_samples else "step,lr,loss"
    lines = [header]
    for step, (lr_value, loss_value) in enumerate(zip(lr, loss)):
        cells = [str(step), format_value(lr_value), format_value(loss_value)]
        if with_samples:
            cells.append(str(32 * (step + 1)))
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


def assert_no_missing_values(value: object) -> None:
    if isinstance(value, dict):
        for item in value.values():
            assert_no_missing_values(item)
    elif isinstance(value, list):
        for item in value:
            assert_no_missing_values(item)
    else:
        assert value is not None
        assert not (isinstance(value, float) and not math.isfinite(value))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(curves())
def test_random_curves_plot_and_suggest(tmp_path: Path, curve: tuple[list[float], list[float], bool]) -> None:
    lr, loss, with_samples = curve
    csv_path = write_csv(tmp_path / "curve.csv", lr, loss, with_samples)
    results = load_results(csv_path)

    try:
        figure = build_figure([results])
    except InputFileError as error:
        assert first_nonfinite_row(results) == 0, error
        assert str(csv_path) in str(error)
    else:
        try:
            # Drawing a whole figure took about 0.4 s on a 2-core machine, so each example checks
            # only the axis limits and tick positions. test_rendered_figure_of_awkward_curve draws one.
            for axes in figure.axes[:3]:
                for low, high in (axes.get_xlim(), axes.get_ylim()):
                    assert math.isfinite(low), (axes.get_label(), low, high)
                    assert math.isfinite(high), (axes.get_label(), low, high)
                assert np.all(np.isfinite(axes.get_xticks()))
                assert np.all(np.isfinite(axes.get_yticks()))
        finally:
            figure.clear()

    result = runner.invoke(app, ["suggest", str(csv_path), "-b", "64", "--test-batch-size", "32"])

    assert "Traceback" not in result.stderr
    if result.exit_code == 0:
        block = json.loads(result.stdout)
        assert block["scheduler"]["type"] == "OneCycle"
        params = block["scheduler"]["params"]
        assert 0 < params["cycle_min_lr"] < params["cycle_max_lr"]
        assert_no_missing_values(block)
        assert "NaN" not in result.stdout
        assert "Infinity" not in result.stdout
    else:
        assert result.exit_code == 3, result.stderr
        assert result.stdout == ""
        assert result.stderr.startswith("no suggestion: ")


def test_rendered_figure_of_awkward_curve(tmp_path: Path) -> None:
    """One full render of a curve with huge, negative and non-finite losses and an LR from zero."""
    lr = np.linspace(0.0, 1.0, 30).tolist()
    loss = [1e300, -1e300, 0.0, -50.0] + [float(value) for value in np.linspace(5, -5, 24)] + [math.inf, math.nan]
    results = load_results(write_csv(tmp_path / "awkward.csv", lr, loss, with_samples=True))

    figure = build_figure([results])
    data = render_figure(figure, "png")
    figure.clear()

    assert data.startswith(b"\x89PNG\r\n\x1a\n")
