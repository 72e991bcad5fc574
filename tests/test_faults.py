"""Faults: exceptions in user code, --debug, safe loading of configs and data, atomic writes."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from lrrt_cli.cli import app
from lrrt_cli.outputs import RUN_FILES, RunFolder
from lrrt_cli.results import BASE_COLUMNS, load_results

runner = CliRunner()

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# User code that fails in a helper, so a test can check that the user's own frames are shown.
USER_CODE = '''
import torch
from torch.utils.data import TensorDataset

CALLS = {"step": 0, "loss": 0}


def broken_dataset(num_samples=64):
    return read_shard(num_samples)


def read_shard(num_samples):
    raise OSError(f"dataset shard {num_samples} is unreadable")


def flaky_step(model, batch):
    CALLS["step"] += 1
    if CALLS["step"] > 8:
        check_batch(batch)
    inputs, targets = batch
    return torch.nn.functional.cross_entropy(model(inputs), targets)


def check_batch(batch):
    raise KeyError("batch has no 'mask' entry")


def flaky_loss(prediction, targets):
    CALLS["loss"] += 1
    if CALLS["loss"] > 3:
        scale_loss(prediction)
    return torch.nn.functional.cross_entropy(prediction, targets)


def scale_loss(prediction):
    raise ZeroDivisionError("loss scale is zero")
'''


def lrrt(*arguments: object):
    return runner.invoke(app, [str(argument) for argument in arguments])


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


@pytest.fixture
def user_code(config_dir: Path) -> Path:
    path = config_dir / "user_code.py"
    path.write_text(USER_CODE)
    return path


# ---------------------------------------------------------------- user code


USER_CODE_SITES = [
    # (id, config changes, user file, user function that raised, error line)
    ("model-factory", {"model": {"factory": "models.py:raising_factory"}}, "models.py", "raising_factory",
     "error: model.factory: raising_factory raised RuntimeError: factory could not build the model"),
    ("dataset-factory", {"data": {"train": {"type": "factory", "factory": "user_code.py:broken_dataset"}}},
     "user_code.py", "read_shard",
     "error: data.train.factory: broken_dataset raised OSError: dataset shard 64 is unreadable"),
    ("step-function", {"training": {"step": "user_code.py:flaky_step"}}, "user_code.py", "check_batch",
     "raised KeyError: \"batch has no 'mask' entry\""),
    ("loss-callable", {"loss": "user_code.py:flaky_loss"}, "user_code.py", "scale_loss",
     "raised ZeroDivisionError: loss scale is zero"),
    ("forward-pass", {"model": {"factory": "models.py:failing_mlp", "kwargs": {"fail_at": 4}}}, "models.py",
     "raise_user_error", "error: the model's forward pass raised ValueError: user model failed on call 5"),
]


@pytest.mark.parametrize(("changes", "user_file", "function", "message"),
                         [site[1:] for site in USER_CODE_SITES], ids=[site[0] for site in USER_CODE_SITES])
def test_user_code_error_shows_user_traceback(tmp_path, write_config, user_code, changes, user_file,
                                              function, message):
    result = lrrt("run", write_config(changes), "--output", tmp_path / "out", "--quiet")

    assert result.exit_code == 1, result.stderr
    assert result.stderr.startswith("Traceback (most recent call last):\n"), result.stderr
    assert f'{user_file}", line' in result.stderr
    assert f"in {function}\n" in result.stderr
    assert "lrrt_cli" not in result.stderr
    assert len(error_lines(result.stderr)) == 1
    assert result.stderr.rstrip("\n").splitlines()[-1].startswith("error: ")
    assert message in result.stderr


def test_step_error_keeps_rows(tmp_path, write_config, user_code):
    run_dir = tmp_path / "out"
    result = lrrt("run", write_config({"training": {"step": "user_code.py:flaky_step"}}), "--output", run_dir,
                  "--quiet")

    assert result.exit_code == 1
    results = load_results(run_dir / "results.csv")
    assert results.step == [float(step) for step in range(8)]
    metadata = json.loads((run_dir / "run.json").read_text())
    assert metadata["status"] == "failed"
    assert metadata["stop"]["reason"] == "error"
    assert metadata["stop"]["step"] == 7
    assert metadata["steps_run"] == 8
    assert metadata["error"]["type"] == "UserCodeError"
    assert "KeyError" in metadata["error"]["message"]
    assert (run_dir / "results.png").read_bytes().startswith(PNG_SIGNATURE)


DEBUG_CASES = [
    # (id, arguments after --debug, exit code, an internal file the full traceback passes through)
    ("config-error", lambda cfg, csv: ["check", cfg, "--set", "data.batch_size=0"], 2, "lrrt_cli/config.py"),
    ("set-error", lambda cfg, csv: ["run", cfg, "--set", "stop.max_step=3"], 2, "lrrt_cli/config.py"),
    ("input-file-error", lambda cfg, csv: ["plot", csv.parent / "absent.csv"], 2, "lrrt_cli/results.py"),
    ("no-suggestion", lambda cfg, csv: ["suggest", csv, "-b", "64"], 3, "lrrt_cli/one_cycle.py"),
    ("user-code-error", lambda cfg, csv: ["run", cfg, "--set", "model.factory=models.py:raising_factory"], 1,
     "lrrt_cli/loading.py"),
]


@pytest.mark.parametrize(("arguments", "exit_code", "internal_file"), [case[1:] for case in DEBUG_CASES],
                         ids=[case[0] for case in DEBUG_CASES])
def test_debug_shows_full_traceback(tmp_path, write_config, monkeypatch, arguments, exit_code, internal_file):
    monkeypatch.chdir(tmp_path)
    flat_curve = tmp_path / "flat.csv"
    flat_curve.write_text("lr,loss\n1e-5,0.40\n1e-4,0.45\n1e-3,0.60\n1e-2,1.20\n1e-1,4.00\n")
    command = arguments(write_config(), flat_curve)

    plain = lrrt(*command)
    debug = lrrt("--debug", *command)

    assert plain.exit_code == debug.exit_code == exit_code
    assert "lrrt_cli" not in plain.stderr
    assert "Traceback (most recent call last)" in debug.stderr
    assert internal_file in debug.stderr
    last_line = debug.stderr.rstrip("\n").splitlines()[-1]
    assert last_line == plain.stderr.rstrip("\n").splitlines()[-1]


# ---------------------------------------------------------------- safe loading


@pytest.mark.parametrize("command", ["check", "run"])
def test_yaml_python_tag_rejected_and_not_run(tmp_path, config_dir, command):
    marker = tmp_path / "yaml-payload-ran"
    config = config_dir / "tagged.yaml"
    text = yaml.safe_dump({"name": "tagged", "model": {"factory": "models.py:tiny_mlp"}}, sort_keys=False)
    config.write_text(text + f'seed: !!python/object/apply:os.system ["echo hacked > {marker}"]\n')

    result = lrrt(command, config, "--output", tmp_path / "out") if command == "run" else lrrt(command, config)

    assert result.exit_code == 2
    assert not marker.exists()
    assert "hacked" not in result.stdout
    assert f"error: {config}: line 4: invalid YAML" in result.stderr
    assert "python/object/apply:os.system" in result.stderr
    assert "remove the tag" in result.stderr
    assert not (tmp_path / "out").exists()


def create_marker(path: str) -> None:
    Path(path).touch()


class PickledPayload:
    """An object whose unpickling creates ``marker``: proof that pickle ran code from the file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (create_marker, (str(self.marker),))


def test_pt_with_pickled_object_rejected_and_not_run(tmp_path, write_config, config_dir):
    marker = tmp_path / "pickle-payload-ran"
    torch.save({"inputs": PickledPayload(marker), "targets": torch.zeros(4, dtype=torch.long)},
               config_dir / "data.pt")
    control_marker = tmp_path / "control-ran"
    torch.save({"inputs": PickledPayload(control_marker)}, tmp_path / "control.pt")
    # The same kind of file loaded with full pickle does run the payload, so the check below can fail.
    torch.load(tmp_path / "control.pt", weights_only=False)
    assert control_marker.exists()

    config = write_config({"data": {"train": {"type": "tensors", "path": "data.pt"}}})
    result = lrrt("run", config, "--output", tmp_path / "out", "--quiet")

    assert result.exit_code == 2
    assert not marker.exists()
    lines = result.stderr.rstrip("\n").splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {config_dir / 'data.pt'}: cannot load with weights_only=True")
    assert "create_marker was not an allowed global" in lines[0]
    assert "torch.save({'inputs': x, 'targets': y}, path)" in lines[0]
    assert "\x1b[" not in result.stderr


# ---------------------------------------------------------------- atomic writes


def is_complete(name: str, data: bytes) -> bool:
    """Return True when ``data`` is a whole JSON document or a whole PNG."""
    if name.endswith(".json"):
        json.loads(data)
        return True
    return data.startswith(PNG_SIGNATURE) and data.endswith(b"IEND\xaeB`\x82")


@pytest.fixture
def replace_calls(monkeypatch):
    """Record every ``os.replace`` with the destination's content at that moment, then do it."""
    calls: list[dict] = []
    real_replace = os.replace

    def spy(source, destination, *args, **kwargs):
        source, destination = Path(source), Path(destination)
        calls.append({
            "source": source,
            "destination": destination,
            "new": source.read_bytes(),
            "old": destination.read_bytes() if destination.exists() else None,
        })
        return real_replace(source, destination, *args, **kwargs)

    monkeypatch.setattr(os, "replace", spy)
    return calls


def test_outputs_written_through_rename(tmp_path, write_config, replace_calls):
    run_dir = tmp_path / "out"
    result = lrrt("run", write_config(), "--output", run_dir, "--quiet")
    assert result.exit_code == 0, result.stderr
    png_before = (run_dir / "results.png").read_bytes()
    replotted = lrrt("plot", run_dir / "results.csv", "-o", run_dir / "results.png")
    assert replotted.exit_code == 0, replotted.stderr

    written = [call["destination"].name for call in replace_calls]
    assert written == ["run.json", "results.png", "suggestion.json", "run.json", "results.png"]
    for call in replace_calls:
        assert call["source"].parent == call["destination"].parent
        assert call["source"].name.startswith(f".{call['destination'].name}.")
        assert is_complete(call["destination"].name, call["new"])
    first_run_json, final_run_json = replace_calls[0], replace_calls[3]
    assert first_run_json["old"] is None
    assert json.loads(final_run_json["old"])["status"] == "running"
    assert json.loads(final_run_json["new"])["status"] == "completed"
    assert replace_calls[4]["old"] == png_before
    assert sorted(path.name for path in run_dir.iterdir()) == sorted(RUN_FILES)


def test_failed_rename_keeps_old_file_and_no_temporary(tmp_path, write_config, monkeypatch):
    run_dir = tmp_path / "out"
    assert lrrt("run", write_config(), "--output", run_dir, "--quiet").exit_code == 0
    png_before = (run_dir / "results.png").read_bytes()

    def full_disk(source, destination, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    result = lrrt("plot", run_dir / "results.csv", "-o", run_dir / "results.png")

    assert result.exit_code == 2
    assert result.stderr == (f"error: cannot write {run_dir / 'results.png'}: No space left on device; "
                             "choose a writable output location\n")
    assert (run_dir / "results.png").read_bytes() == png_before
    assert sorted(path.name for path in run_dir.iterdir()) == sorted(RUN_FILES)


# ---------------------------------------------------------------- partial runs


class InterruptedSweep:
    """The outcome of a sweep stopped by SIGINT after ``rows`` updates."""

    def __init__(self, rows: list[dict]):
        self.rows = rows
        self.stop_reason = "interrupted"
        self.stop_step = rows[-1]["step"] if rows else None
        self.stop_lr = rows[-1]["lr"] if rows else None
        self.best_loss = min(row["smoothed_loss"] for row in rows) if rows else None
        self.best_step = None
        self.best_lr = None
        self.num_epochs = 1
        self.error = None


def sweep_rows(count: int) -> list[dict]:
    """A loss that falls, flattens and rises as the LR grows tenfold every 12 updates."""
    rows = []
    for step in range(count):
        position = step / 59
        loss = 2.0 - math.tanh(4 * (position - 0.5)) + 3 * max(0.0, position - 0.8)
        rows.append({"step": step, "lr": 1e-5 * 10 ** (5 * position), "loss": loss, "smoothed_loss": loss,
                     "samples": 32 * (step + 1)})
    return rows


def test_interrupt_writes_partial_outputs(tmp_path):
    folder = RunFolder.prepare(tmp_path / "out", force=False)
    metadata = {"name": "partial", "status": "running", "global_batch_size": 32}
    folder.write_metadata(metadata)
    rows = sweep_rows(60)
    with folder.open_results(list(BASE_COLUMNS)) as writer:
        for row in rows:
            writer.append(row)

    finished = folder.finish(InterruptedSweep(rows), metadata, config=None)

    saved = json.loads(folder.metadata_path.read_text())
    assert saved["status"] == "interrupted"
    assert saved["stop"] == {"reason": "interrupted", "step": 59, "lr": rows[-1]["lr"]}
    assert saved["steps_run"] == 60
    assert folder.plot_path.read_bytes().startswith(PNG_SIGNATURE)
    assert finished.suggestion is not None
    assert json.loads(folder.suggestion_path.read_text()) == saved["suggestion"]


def test_interrupt_before_first_update(tmp_path):
    folder = RunFolder.prepare(tmp_path / "out", force=False)
    metadata = {"name": "empty", "status": "running", "global_batch_size": 32}
    with folder.open_results(list(BASE_COLUMNS)):
        pass

    folder.finish(InterruptedSweep([]), metadata, config=None)

    saved = json.loads(folder.metadata_path.read_text())
    assert saved["status"] == "interrupted"
    assert saved["steps_run"] == 0
    assert saved["suggestion"] is None
    assert "no update completed" in saved["suggestion_error"]
    assert not folder.plot_path.exists()
