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


def test_every_group_runs_at_its_scale(tmp_path, write_config):
    run_dir = tmp_path / "groups"
    config = write_config({
        "optimizer": {"groups": [{"match": "*.weight", "lr_scale": 0.5}, {"match": "*.bias", "lr_scale": 2.0}]},
        "scheduler": {"type": "Fixed", "params": {"lr": 0.01}},
        "stop": {"max_steps": 3},
    })
    result = runner.invoke(app, ["run", str(config), "--output", str(run_dir), "--quiet"])
    assert result.exit_code == 0, result.output
    results = load_results(run_dir / "results.csv")
    assert results.lr == [0.01] * 3
    assert results.columns["lr_group_1"] == [0.005] * 3
    assert results.columns["lr_group_2"] == [0.02] * 3
    groups = json.loads((run_dir / "run.json").read_text())["param_groups"]
    assert [group["num_parameters"] for group in groups] == [0, 20 * 16 + 16 * 4, 16 + 4]


def test_group_glob_matching_nothing_is_rejected(tmp_path, write_config):
    config = write_config({"optimizer": {"groups": [{"match": "0.weigth", "lr_scale": 0.1}]}})
    result = runner.invoke(app, ["run", str(config), "--output", str(tmp_path / "typo")])
    assert result.exit_code == 2
    assert "the glob(s) '0.weigth' match no trainable parameter" in result.stderr
    assert "0.weight" in result.stderr


def test_short_last_batch_warns(tmp_path, write_config):
    config = write_config({"data": {"train": {"type": "synthetic", "num_samples": 40}, "batch_size": 16},
                           "stop": {"max_steps": 4}})
    result = runner.invoke(app, ["run", str(config), "--output", str(tmp_path / "short"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "one update in 3 trains on a short batch of 8 samples" in result.stderr
    metadata = json.loads((tmp_path / "short" / "run.json").read_text())
    assert metadata["warnings"] and "drop_last" in metadata["warnings"][0]


def test_grouped_run_suggestion_warns_about_one_lr(tmp_path, write_config):
    config = write_config({"optimizer": {"groups": [{"match": "2.*", "lr_scale": 0.1}]},
                           "scheduler": {"type": "ExponentialRangeTest", "params": {
                               "start_lr": 1e-4, "end_lr": 100.0, "num_steps": 120}}})
    result = runner.invoke(app, ["run", str(config), "--output", str(tmp_path / "g"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "DeepSpeed's OneCycle gives every group the same LR" in result.stderr
