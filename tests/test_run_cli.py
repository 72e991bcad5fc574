"""`lrrt run` and `lrrt check` end to end: real training, real files, real signals."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lrrt_cli.cli import app
from lrrt_cli.results import load_results

from conftest import REPO_ROOT

runner = CliRunner()

RUN_JSON_FIELDS = {
    "name", "status", "lrrt_version", "torch_version", "python_version", "device", "world_size",
    "batch_size_per_process", "gradient_accumulation_steps", "global_batch_size", "seed",
    "start_time", "end_time", "steps_run", "stop", "best", "suggestion", "suggestion_error", "config",
}


def lrrt(*args):
    return runner.invoke(app, [str(arg) for arg in args])


def spawn(args, cwd):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "lrrt_cli", *map(str, args)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_rows(path: Path, count: int, process, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) > count:
            return
        if process.poll() is not None:
            raise AssertionError(f"run ended early: {process.communicate()}")
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {count} rows")


def test_run_digits_writes_every_output(tmp_path):
    run_dir = tmp_path / "digits"
    result = lrrt("run", REPO_ROOT / "configs" / "digits.yaml", "--output", run_dir)
    assert result.exit_code == 0, result.output

    results = load_results(run_dir / "results.csv")
    header = (run_dir / "results.csv").read_text().splitlines()[0]
    assert header == "step,lr,loss,smoothed_loss,samples,val_loss"
    assert results.lr[0] == 0.001
    assert results.step == [float(step) for step in range(len(results))]

    metadata = json.loads((run_dir / "run.json").read_text())
    assert RUN_JSON_FIELDS <= set(metadata)
    assert metadata["status"] == "completed"
    assert metadata["stop"]["reason"] == "diverged"
    assert metadata["steps_run"] == len(results)
    assert metadata["global_batch_size"] == 32
    assert metadata["stop"]["lr"] == results.lr[-1]
    assert metadata["best"]["lr"] < metadata["stop"]["lr"]

    png = (run_dir / "results.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    suggestion = json.loads((run_dir / "suggestion.json").read_text())
    assert metadata["suggestion"] == suggestion
    block = json.loads(result.stdout)
    assert block["scheduler"]["type"] == "OneCycle"
    assert "suggested cycle_max_lr" in result.stderr
    assert "step" in result.stderr


def test_run_refuses_existing_folder_without_force(tmp_path, write_config):
    config = write_config({"scheduler": {"type": "Fixed", "params": {"lr": 0.01}}, "stop": {"max_steps": 20}})
    run_dir = tmp_path / "out"
    assert lrrt("run", config, "--output", run_dir, "--quiet").exit_code == 0
    before = (run_dir / "results.csv").read_text()

    refused = lrrt("run", config, "--output", run_dir, "--quiet")
    assert refused.exit_code == 2
    assert "already contains" in refused.stderr
    assert "--force" in refused.stderr
    assert (run_dir / "results.csv").read_text() == before

    replaced = lrrt("run", config, "--output", run_dir, "--quiet", "--force", "--max-steps", "7")
    assert replaced.exit_code == 0, replaced.output
    assert len(load_results(run_dir / "results.csv")) == 7


def test_run_output_path_is_a_file(tmp_path, write_config):
    target = tmp_path / "taken"
    target.write_text("keep me")
    result = lrrt("run", write_config(), "--output", target)
    assert result.exit_code == 2
    assert "is a file, not a folder" in result.stderr
    assert target.read_text() == "keep me"


def test_same_seed_same_columns(tmp_path, write_config):
    config = write_config()
    for name in ("a", "b"):
        assert lrrt("run", config, "--output", tmp_path / name, "--quiet").exit_code == 0
    first, second = load_results(tmp_path / "a" / "results.csv"), load_results(tmp_path / "b" / "results.csv")
    assert first.lr == second.lr
    assert first.loss == second.loss


def test_killed_run_keeps_completed_rows(tmp_path, write_config):
    config = write_config({"model": {"factory": "models.py:slow_mlp", "kwargs": {"delay": 0.02}},
                           "scheduler": {"type": "Fixed", "params": {"lr": 0.01}}, "stop": {"max_steps": 5000}})
    run_dir = tmp_path / "killed"
    process = spawn(["run", config, "--output", run_dir, "--quiet"], cwd=tmp_path)
    wait_for_rows(run_dir / "results.csv", 15, process)
    process.kill()
    process.wait()
    text = (run_dir / "results.csv").read_text()
    assert text.endswith("\n"), "the last row was cut off"
    results = load_results(run_dir / "results.csv")
    assert len(results) >= 15
    assert results.step == [float(step) for step in range(len(results))]
    assert all(value == 0.01 for value in results.lr)
    # run.json is written whole at the start and never rewritten in place, so it still parses.
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"
    assert not [path.name for path in run_dir.iterdir() if path.name.startswith(".")]


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_cleanly(tmp_path, write_config, sent):
    config = write_config({"model": {"factory": "models.py:slow_mlp", "kwargs": {"delay": 0.02}},
                           "scheduler": {"type": "ExponentialRangeTest", "params": {
                               "start_lr": 1e-4, "end_lr": 1.0, "num_steps": 5000}}})
    run_dir = tmp_path / "stopped"
    process = spawn(["run", config, "--output", run_dir, "--quiet"], cwd=tmp_path)
    wait_for_rows(run_dir / "results.csv", 30, process)
    process.send_signal(sent)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr

    metadata = json.loads((run_dir / "run.json").read_text())
    assert metadata["status"] == "interrupted"
    assert metadata["stop"]["reason"] == "interrupted"
    results = load_results(run_dir / "results.csv")
    assert metadata["steps_run"] == len(results) >= 30
    assert results.step == [float(step) for step in range(len(results))]
    assert metadata["stop"]["step"] == len(results) - 1
    assert metadata["stop"]["lr"] == results.lr[-1]
    assert stderr.rstrip("\n").splitlines()[-1] == (
        f"error: interrupted after {len(results)} updates; partial results are in {run_dir}"
    )
    assert (run_dir / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if (run_dir / "suggestion.json").exists():
        assert json.loads((run_dir / "suggestion.json").read_text()) == metadata["suggestion"]
        assert any("interrupted after" in warning for warning in metadata["suggestion"]["warnings"])
    else:
        assert metadata["suggestion"] is None
        assert metadata["suggestion_error"]


def test_user_error_mid_run_shows_user_frames(tmp_path, write_config):
    config = write_config({"model": {"factory": "models.py:failing_mlp", "kwargs": {"fail_at": 12}}})
    run_dir = tmp_path / "failed"
    result = lrrt("run", config, "--output", run_dir, "--quiet")
    assert result.exit_code == 1
    assert "raise_user_error" in result.stderr
    assert "models.py" in result.stderr
    assert "lrrt_cli/engine.py" not in result.stderr
    assert "error: the model's forward pass raised ValueError: user model failed on call 13" in result.stderr
    metadata = json.loads((run_dir / "run.json").read_text())
    assert metadata["status"] == "failed"
    assert metadata["stop"]["reason"] == "error"
    assert metadata["error"]["type"] == "UserCodeError"
    assert "user model failed on call 13" in metadata["error"]["message"]
    results = load_results(run_dir / "results.csv")
    assert results.step == [float(step) for step in range(12)]
    assert metadata["steps_run"] == 12
    assert (run_dir / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_debug_shows_full_traceback(tmp_path, write_config):
    config = write_config({"model": {"factory": "models.py:raising_factory"}})
    plain = lrrt("run", config, "--output", tmp_path / "a")
    debug = lrrt("--debug", "run", config, "--output", tmp_path / "b")
    assert plain.exit_code == debug.exit_code == 1
    assert "lrrt_cli" not in plain.stderr
    assert "lrrt_cli/loading.py" in debug.stderr


def test_check_prints_resolved_config_and_planned_lr(write_config):
    result = lrrt("check", write_config(), "--set", "stop.max_steps=30")
    assert result.exit_code == 0, result.output
    assert "max_steps: 30" in result.stdout
    assert "planned updates: 30" in result.stdout
    assert "step       0: 0.0001" in result.stdout
    assert "is valid" in result.stdout


def test_comparison_config_writes_three_runs_and_one_figure(tmp_path):
    result = lrrt("run", REPO_ROOT / "configs" / "digits_comparison.yaml", "--output", tmp_path, "--quiet")
    assert result.exit_code == 0, result.output
    names = sorted(path.name for path in tmp_path.iterdir() if path.is_dir())
    assert names == ["fast_sweep_rate_50", "fixed_lr_0.01", "slow_sweep_rate_5"]
    fast = load_results(tmp_path / "fast_sweep_rate_50" / "results.csv")
    slow = load_results(tmp_path / "slow_sweep_rate_5" / "results.csv")
    assert len(fast) < len(slow)
    assert (tmp_path / "comparison.png").read_bytes()[:4] == b"\x89PNG"
