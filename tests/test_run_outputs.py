"""What `lrrt run` records and prints, beyond the files themselves."""

import json
import re

from typer.testing import CliRunner

from lrrt_cli.cli import app
from lrrt_cli.results import load_results

runner = CliRunner()


def test_progress_line_shows_step_lr_loss_best(tmp_path, write_config):
    result = runner.invoke(app, ["run", str(write_config()), "--output", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert re.search(r"step \d+\s+lr \d\.\d{3}e[+-]\d+\s+loss [\d.e+-]+\s+best [\d.e+-]+", result.stderr)
    assert "wrote " in result.stderr


def test_quiet_prints_only_the_block(tmp_path, write_config):
    result = runner.invoke(app, ["run", str(write_config()), "--output", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert json.loads(result.stdout)["scheduler"]["type"] == "OneCycle"


def test_no_suggestion_recorded_with_reason(tmp_path, write_config):
    run_dir = tmp_path / "short"
    result = runner.invoke(app, ["run", str(write_config()), "--output", str(run_dir), "--max-steps", "3"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    metadata = json.loads((run_dir / "run.json").read_text())
    assert metadata["suggestion"] is None
    assert metadata["suggestion_error"]
    assert "no suggestion:" in result.stderr
    assert not (run_dir / "suggestion.json").exists()
    assert (run_dir / "results.png").exists()


def test_adam_with_callable_loss_and_val_split(tmp_path, write_config):
    config = write_config({
        "optimizer": {"type": "Adam", "params": {"betas": [0.9, 0.99]}},
        "loss": "models.py:label_smoothed_loss",
        "data": {"val": {"fraction": 0.25}, "val_every": 4},
    })
    run_dir = tmp_path / "adam"
    result = runner.invoke(app, ["run", str(config), "--output", str(run_dir), "--quiet"])
    assert result.exit_code == 0, result.output
    results = load_results(run_dir / "results.csv")
    assert results.val_loss is not None
    assert [index for index, value in enumerate(results.val_loss) if value == value] == list(range(0, len(results), 4))
    metadata = json.loads((run_dir / "run.json").read_text())
    assert metadata["config"]["optimizer"]["type"] == "Adam"
    assert metadata["num_train_samples"] == 192


def test_gradient_accumulation_global_batch(tmp_path, write_config):
    run_dir = tmp_path / "accumulated"
    config = write_config({"training": {"gradient_accumulation_steps": 2}, "stop": {"max_steps": 12}})
    result = runner.invoke(app, ["run", str(config), "--output", str(run_dir), "--quiet"])
    assert result.exit_code == 0, result.output
    metadata = json.loads((run_dir / "run.json").read_text())
    assert metadata["global_batch_size"] == 32
    assert metadata["batch_size_per_process"] == 16
    results = load_results(run_dir / "results.csv")
    assert results.samples == [32.0 * (step + 1) for step in range(12)]


def test_check_catches_missing_data_file(write_config):
    config = write_config({"data": {"train": {"type": "csv", "path": "missing.csv", "target": "y"}}})
    result = runner.invoke(app, ["check", str(config)])
    assert result.exit_code == 2
    assert "data.train.path: file" in result.stderr
    assert "missing.csv does not exist" in result.stderr


def test_closure_optimizer_rejected(tmp_path, write_config):
    result = runner.invoke(app, ["check", str(write_config({"optimizer": {"type": "LBFGS", "params": {}}}))])
    assert result.exit_code == 2
    assert "LBFGS needs a closure" in result.stderr


def test_config_error_leaves_no_run_folder(tmp_path, write_config):
    config = write_config({"data": {"train": {"type": "csv", "path": "missing.csv", "target": "y"}}})
    run_dir = tmp_path / "never"
    result = runner.invoke(app, ["run", str(config), "--output", str(run_dir)])
    assert result.exit_code == 2
    assert not run_dir.exists()


def test_batch_sampler_loader_batch_size(tmp_path, config_dir, write_config):
    (config_dir / "sampled.py").write_text(
        "import torch\n"
        "from torch.utils.data import BatchSampler, DataLoader, SequentialSampler, TensorDataset\n"
        "def build():\n"
        "    data = TensorDataset(torch.randn(64, 20), torch.randint(0, 4, (64,)))\n"
        "    return DataLoader(data, batch_sampler=BatchSampler(SequentialSampler(data), 16, False))\n"
    )
    run_dir = tmp_path / "sampled"
    config = write_config({"data": {"train": {"type": "factory", "factory": "sampled.py:build"}}, "stop": {"max_steps": 10}})
    result = runner.invoke(app, ["run", str(config), "--output", str(run_dir), "--quiet"])
    assert result.exit_code == 0, result.output
    metadata = json.loads((run_dir / "run.json").read_text())
    assert metadata["batch_size_per_process"] == 16
    assert metadata["global_batch_size"] == 16
    assert load_results(run_dir / "results.csv").samples[:3] == [16.0, 32.0, 48.0]
