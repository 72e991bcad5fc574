"""Tests for ``lrrt suggest`` through the Typer app and as a subprocess."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lrrt_cli.cli import app

runner = CliRunner()

F1_CSV = """lr,loss
1e-6,2.303
1e-5,2.301
1e-4,2.290
1e-3,2.150
1e-2,1.600
1e-1,1.050
1e0,2.900
1e1,nan
1e2,inf
"""

F8_CSV = """lr,loss
1e-5,0.40
1e-4,0.45
1e-3,0.60
1e-2,1.20
1e-1,4.00
"""


def write_sweep(path: Path, test_batch: int, updates: int = 2400) -> Path:
    """Write a DeepSpeed LRRangeTest sweep (m=1e-4, S=200, R=5) as lrrt's results.csv."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["step,lr,loss,smoothed_loss,samples"]
    for step in range(updates):
        lr = 1e-4 * (1 + 5 * step / 200)
        loss = 1.0 - 0.5 * math.tanh((lr - 0.002) / 0.001) + max(0.0, lr - 0.0055) * 2000
        lines.append(f"{step},{lr!r},{loss!r},{loss!r},{(step + 1) * test_batch}")
    path.write_text("\n".join(lines) + "\n")
    return path


def suggest(*arguments: str):
    return runner.invoke(app, ["suggest", *arguments])


@pytest.fixture
def sweep_512(tmp_path: Path) -> Path:
    return write_sweep(tmp_path / "run512" / "results.csv", 512)


def test_worked_example_2048_through_cli(tmp_path):
    csv_path = write_sweep(tmp_path / "results.csv", 2048)

    result = suggest(str(csv_path), "--max-lr", "0.005", "--batch-size", "2048")

    assert result.exit_code == 0, result.stderr
    params = json.loads(result.stdout)["scheduler"]["params"]
    assert params["cycle_first_step_size"] == 1960
    assert params["cycle_second_step_size"] == 1960
    assert params["cycle_max_lr"] == 0.005
    assert params["cycle_min_lr"] == 0.0005


def test_worked_example_512_through_cli(sweep_512):
    result = suggest(str(sweep_512), "--max-lr", "0.005", "--batch-size", "2048")

    assert result.exit_code == 0, result.stderr
    params = json.loads(result.stdout)["scheduler"]["params"]
    assert params["cycle_first_step_size"] == 490
    assert params["cycle_second_step_size"] == 490


def test_default_format_is_deepspeed_json_only(sweep_512):
    result = suggest(str(sweep_512), "-b", "2048")

    assert result.exit_code == 0, result.stderr
    block = json.loads(result.stdout)
    assert list(block) == ["scheduler"]
    assert block["scheduler"]["type"] == "OneCycle"


def test_pytorch_format(sweep_512):
    result = suggest(str(sweep_512), "-b", "2048", "--format", "pytorch")

    assert result.exit_code == 0, result.stderr
    kwargs = json.loads(result.stdout)
    assert kwargs["CyclicLR"]["step_size_up"] == kwargs["CyclicLR"]["step_size_down"]
    assert kwargs["CyclicLR"]["mode"] == "triangular"
    assert kwargs["OneCycleLR"]["three_phase"] is True
    assert kwargs["OneCycleLR"]["max_lr"] == kwargs["CyclicLR"]["max_lr"]


def test_yaml_format(sweep_512):
    result = suggest(str(sweep_512), "-b", "2048", "--format", "yaml")

    assert result.exit_code == 0, result.stderr
    block = yaml.safe_load(result.stdout)
    assert block["scheduler"]["type"] == "OneCycle"
    assert block["scheduler"]["params"]["cycle_first_step_size"] >= 1


def test_json_format_has_methods_and_reasoning(sweep_512):
    result = suggest(str(sweep_512), "-b", "2048", "--format", "json")

    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert set(payload["methods"]) == {"steepest", "minimum", "valley", "divergence"}
    assert payload["method"] == "divergence"
    assert payload["batch"] == {"target": 2048, "test": 512, "test_source": "samples column"}
    assert payload["reasoning"]
    assert payload["source"].endswith("results.csv")


def test_text_format_names_fields(sweep_512):
    result = suggest(str(sweep_512), "-b", "2048", "--format", "text")

    assert result.exit_code == 0, result.stderr
    for name in ("cycle_max_lr", "cycle_min_lr", "cycle_first_step_size", "decay_step_size",
                 "steepest", "valley", "Reasoning"):
        assert name in result.stdout


@pytest.mark.parametrize("fmt", ["deepspeed", "pytorch", "yaml", "json", "text"])
def test_no_missing_values_in_output(sweep_512, fmt):
    result = suggest(str(sweep_512), "-b", "2048", "--format", fmt)

    assert result.exit_code == 0, result.stderr
    for word in ("NaN", "nan", "null", "None", "Infinity"):
        assert word not in result.stdout


def test_f1_nan_tail_gives_block(tmp_path):
    csv_path = tmp_path / "f1.csv"
    csv_path.write_text(F1_CSV)

    result = suggest(str(csv_path), "-b", "64", "--test-batch-size", "64", "--format", "json")

    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["cycle_max_lr"] <= 0.1
    assert payload["analysis"]["stop_row"] == 7


def test_f8_exits_3_with_reason_and_no_block(tmp_path):
    csv_path = tmp_path / "f8.csv"
    csv_path.write_text(F8_CSV)

    result = suggest(str(csv_path), "-b", "64", "--test-batch-size", "64")

    assert result.exit_code == 3
    assert result.stdout == ""
    assert "no descending section" in result.stderr
    assert result.stderr.startswith("no suggestion: ")


def test_all_nan_exits_3(tmp_path):
    csv_path = tmp_path / "nan.csv"
    csv_path.write_text("lr,loss\n1e-3,nan\n1e-2,nan\n")

    result = suggest(str(csv_path), "-b", "64", "--format", "json")

    assert result.exit_code == 3
    assert result.stdout == ""
    assert "non-finite" in result.stderr


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        (["-b", "0"], "--batch-size"),
        (["-b", "-8"], "--batch-size"),
        (["-b", "64", "--min-ratio", "1"], "--min-ratio"),
        (["-b", "64", "--min-ratio", "0.5"], "--min-ratio"),
        (["-b", "64", "--format", "toml"], "--format"),
        (["-b", "64", "--lr-scaling", "cube"], "--lr-scaling"),
        (["-b", "64", "--method", "slide"], "--method"),
        ([], "--batch-size is required"),
    ],
)
def test_bad_values_exit_2_with_one_line(sweep_512, arguments, match):
    result = suggest(str(sweep_512), *arguments)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert match in result.stderr
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_csv_exits_2(tmp_path):
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text("lr,loss\n1e-3,abc\n")

    result = suggest(str(csv_path), "-b", "64")

    assert result.exit_code == 2
    assert "line 2" in result.stderr
    assert result.stdout == ""


def test_missing_file_exits_2(tmp_path):
    result = suggest(str(tmp_path / "absent.csv"), "-b", "64")

    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_max_lr_above_range_exits_2(sweep_512):
    result = suggest(str(sweep_512), "-b", "2048", "--max-lr", "1.0")

    assert result.exit_code == 2
    assert "--total-steps" in result.stderr


def test_without_results_reads_latest_run(tmp_path, monkeypatch):
    older = write_sweep(tmp_path / "runs" / "older" / "results.csv", 512, updates=2400)
    newer = write_sweep(tmp_path / "runs" / "newer" / "results.csv", 2048, updates=2400)
    os.utime(older, (1_000_000, 1_000_000))
    monkeypatch.chdir(tmp_path)

    result = suggest("-b", "2048", "--max-lr", "0.005")

    assert result.exit_code == 0, result.stderr
    assert str(Path("runs") / "newer" / "results.csv") in result.stderr
    assert json.loads(result.stdout)["scheduler"]["params"]["cycle_first_step_size"] == 1960
    assert newer.exists()


def test_without_results_and_no_runs_exits_2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    result = suggest("-b", "64")

    assert result.exit_code == 2
    assert "no results.csv found" in result.stderr


def test_warnings_go_to_stderr(tmp_path):
    csv_path = write_sweep(tmp_path / "results.csv", 256)

    result = suggest(str(csv_path), "-b", "4096", "--max-lr", "0.005")

    assert result.exit_code == 0, result.stderr
    assert "warning:" in result.stderr
    assert "re-run the range test at the target batch size" in result.stderr
    json.loads(result.stdout)


def test_lr_scaling_through_cli(sweep_512):
    result = suggest(str(sweep_512), "-b", "2048", "--max-lr", "0.005", "--lr-scaling", "sqrt",
                     "--format", "json")

    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["cycle_max_lr"] == pytest.approx(0.01)
    assert payload["lr_scaling"]["heuristic"] is True
    assert payload["deepspeed"]["scheduler"]["params"]["cycle_first_step_size"] == 490


def test_total_steps_through_cli(sweep_512):
    result = suggest(str(sweep_512), "-b", "2048", "--total-steps", "10000")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["scheduler"]["params"]["cycle_first_step_size"] == 4500


def test_suggest_does_not_import_torch(sweep_512):
    script = (
        "import sys\n"
        "from lrrt_cli.cli import main\n"
        f"sys.argv = ['lrrt', 'suggest', {str(sweep_512)!r}, '-b', '2048', '--format', 'json']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exit:\n"
        "    code = exit.code\n"
        "else:\n"
        "    code = 0\n"
        "assert code in (0, None), code\n"
        "assert 'torch' not in sys.modules, 'lrrt suggest imported torch'\n"
    )

    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)

    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["method"] == "divergence"


def test_module_entry_point_prints_block(sweep_512):
    completed = subprocess.run(
        [sys.executable, "-m", "lrrt_cli", "suggest", str(sweep_512), "-b", "2048", "--max-lr", "0.005"],
        capture_output=True, text=True, timeout=60,
    )

    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["scheduler"]["params"]["cycle_first_step_size"] == 490


def test_library_modules_do_not_import_torch():
    script = (
        "import sys\n"
        "import lrrt_cli.one_cycle, lrrt_cli.analysis, lrrt_cli.commands.suggest\n"
        "assert 'torch' not in sys.modules\n"
    )

    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)

    assert completed.returncode == 0, completed.stderr
