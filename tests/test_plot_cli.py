"""`lrrt plot` through the CLI: outputs, error messages and exit codes, headless runs."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from matplotlib.legend import Legend
from typer.testing import CliRunner

from lrrt_cli import plotting
from lrrt_cli.cli import app

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPOSITORY_ROOT = Path(__file__).resolve().parents[1]


def write_sweep(path: Path, *, rows: int = 100, name: str | None = None) -> Path:
    """Write an exponential sweep whose loss falls, then rises; with ``name``, add a run.json."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["step,lr,loss"]
    for step in range(rows):
        lr = 1e-6 * 1e7 ** (step / (rows - 1))
        position = math.log10(lr)
        loss = 2.3 - 1.5 / (1.0 + math.exp(-2.5 * (position + 3.0))) + 0.02 * math.sin(7.0 * step)
        if lr > 0.3:
            loss += (lr / 0.3) ** 4
        lines.append(f"{step},{lr!r},{loss!r}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if name is not None:
        (path.parent / "run.json").write_text(json.dumps({"name": name}), encoding="utf-8")
    return path


def invoke(*args: str):
    return CliRunner().invoke(app, ["plot", *args])


def headless_environment(backend: str | None = None) -> dict[str, str]:
    """Return this process's environment without DISPLAY, and with MPLBACKEND set to ``backend`` or unset."""
    environment = {key: value for key, value in os.environ.items() if key not in ("MPLBACKEND", "DISPLAY")}
    if backend is not None:
        environment["MPLBACKEND"] = backend
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY_ROOT), environment.get("PYTHONPATH")]))
    return environment


def test_single_file_default_output(tmp_path: Path) -> None:
    csv_path = write_sweep(tmp_path / "runs" / "x" / "results.csv")
    result = invoke(str(csv_path))

    assert result.exit_code == 0, result.output
    expected = tmp_path / "runs" / "x" / "results.png"
    assert result.stdout.strip() == str(expected)
    assert expected.read_bytes()[:8] == PNG_SIGNATURE


def test_several_files_default_comparison(tmp_path: Path) -> None:
    first = write_sweep(tmp_path / "a" / "results.csv", name="slow")
    second = write_sweep(tmp_path / "b" / "results.csv", rows=60, name="fast")
    result = invoke(str(first), str(second))

    assert result.exit_code == 0, result.output
    expected = tmp_path / "a" / "comparison.png"
    assert result.stdout.strip() == str(expected)
    assert expected.read_bytes()[:8] == PNG_SIGNATURE


def test_output_option_picks_format(tmp_path: Path) -> None:
    csv_path = write_sweep(tmp_path / "results.csv")
    svg = tmp_path / "out" / "curve.svg"
    pdf = tmp_path / "curve.pdf"

    svg_result = invoke(str(csv_path), "-o", str(svg))
    pdf_result = invoke(str(csv_path), "--output", str(pdf), "--title", "digits")

    assert svg_result.exit_code == 0, svg_result.output
    assert b"<svg" in svg.read_bytes()
    assert pdf_result.exit_code == 0, pdf_result.output
    assert pdf.read_bytes()[:5] == b"%PDF-"


def record_figures(monkeypatch: pytest.MonkeyPatch) -> list:
    """Make ``plotting.build_figure`` keep every figure it builds, and return that list."""
    figures = []
    original = plotting.build_figure

    def recording_build_figure(*args, **kwargs):
        figure = original(*args, **kwargs)
        figures.append(figure)
        return figure

    monkeypatch.setattr(plotting, "build_figure", recording_build_figure)
    return figures


def legend_first_lines(figure) -> list[str]:
    legends = [legend for legend in figure.findobj(Legend) if legend.get_gid() == plotting.GID_LR_LEGEND]
    return [text.get_text().split("\n")[0] for text in legends[0].get_texts()]


def test_run_names_from_run_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    figures = record_figures(monkeypatch)
    first = write_sweep(tmp_path / "a" / "results.csv", name="slow sweep")
    second = write_sweep(tmp_path / "b" / "results.csv")
    result = invoke(str(first), str(second))

    assert result.exit_code == 0, result.output
    assert len(figures) == 1
    assert legend_first_lines(figures[0]) == ["slow sweep", "b"]


def test_labels_override_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    figures = record_figures(monkeypatch)
    first = write_sweep(tmp_path / "a" / "results.csv", name="slow sweep")
    second = write_sweep(tmp_path / "b.csv")
    output = tmp_path / "both.png"
    result = invoke(str(first), str(second), "--label", "slow", "--label", "fast", "-o", str(output))

    assert result.exit_code == 0, result.output
    assert output.is_file()
    assert legend_first_lines(figures[0]) == ["slow", "fast"]


def test_label_count_mismatch_exit_2(tmp_path: Path) -> None:
    first = write_sweep(tmp_path / "a.csv")
    second = write_sweep(tmp_path / "b.csv")
    result = invoke(str(first), str(second), "--label", "only-one")

    assert result.exit_code == 2
    assert "1 --label value(s) for 2 results file(s)" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "comparison.png").exists()


def test_unsupported_extension_exit_2(tmp_path: Path) -> None:
    csv_path = write_sweep(tmp_path / "results.csv")
    output = tmp_path / "curve.jpg"
    result = invoke(str(csv_path), "-o", str(output))

    assert result.exit_code == 2
    assert str(output) in result.stderr
    assert ".png, .svg or .pdf" in result.stderr
    assert "Traceback" not in result.output
    assert not output.exists()


@pytest.mark.parametrize(
    ("content", "expected_parts"),
    [
        ("", ["is empty", "'lr' and 'loss'"]),
        ("step,lr\n0,0.001\n", ["line 1", "loss"]),
        ("lr,loss\n0.001,2.3\n0.01,high\n", ["line 3", "column 'loss'", "'high'"]),
        ("loss,lr\n2.3,0.001\n2.2,1e-2x\n", ["line 3", "column 'lr'", "'1e-2x'"]),
    ],
    ids=["empty-file", "missing-loss-column", "text-in-loss", "text-in-lr"],
)
def test_invalid_csv_exit_2(tmp_path: Path, content: str, expected_parts: list[str]) -> None:
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text(content, encoding="utf-8")
    result = invoke(str(csv_path))

    assert result.exit_code == 2
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, result.stderr
    assert str(csv_path) in error_lines[0]
    for part in expected_parts:
        assert part in error_lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "bad.png").exists()


def test_missing_file_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.csv"
    result = invoke(str(missing))

    assert result.exit_code == 2
    assert str(missing) in result.stderr
    assert "does not exist" in result.stderr


def test_headless_plot_without_torch(tmp_path: Path) -> None:
    csv_path = write_sweep(tmp_path / "results.csv")
    output = tmp_path / "headless.png"
    child = textwrap.dedent(
        f"""
        import sys
        from typer.testing import CliRunner
        from lrrt_cli.cli import app

        result = CliRunner().invoke(app, ["plot", {str(csv_path)!r}, "-o", {str(output)!r}])
        assert result.exit_code == 0, result.output
        assert "torch" not in sys.modules, "lrrt plot imported torch"
        assert "matplotlib.pyplot" not in sys.modules, "lrrt plot imported pyplot"
        print("child ok")
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", child],
        env=headless_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert completed.returncode == 0, completed.stderr
    assert "child ok" in completed.stdout
    assert output.read_bytes()[:8] == PNG_SIGNATURE


@pytest.mark.parametrize("backend", [None, "tkagg"], ids=["no-backend", "interactive-backend"])
def test_module_entry_point_headless(tmp_path: Path, backend: str | None) -> None:
    csv_path = write_sweep(tmp_path / "curve.csv")
    completed = subprocess.run(
        [sys.executable, "-m", "lrrt_cli", "plot", str(csv_path)],
        env=headless_environment(backend),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert completed.returncode == 0, completed.stderr
    expected = tmp_path / "curve.png"
    assert completed.stdout.strip() == str(expected)
    assert expected.read_bytes()[:8] == PNG_SIGNATURE
