"""Config loading: YAML and JSON, path resolution, unknown keys, --set, compare."""

import json
from pathlib import Path

import pytest
import yaml

from lrrt_cli.config import load_config, load_run_configs
from lrrt_cli.errors import ConfigError
from lrrt_cli.schedules import ExponentialRangeTest, Fixed, LRRangeTest

from conftest import TINY_CONFIG


def test_yaml_and_json_give_same_config(config_dir, write_config):
    yaml_path = write_config()
    json_path = config_dir / "run.json"
    json_path.write_text(json.dumps(TINY_CONFIG))
    from_yaml = load_config(yaml_path)
    from_json = load_config(json_path)
    assert from_yaml.to_dict() == dict(from_json.to_dict(), name=from_yaml.name)
    assert from_yaml.schedule == ExponentialRangeTest(1e-4, 10.0, 60)


def test_relative_paths_resolve_against_config_folder(config_dir, write_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_config({"data": {"train": {"type": "csv", "path": "data/train.csv", "target": "y"}},
                         "output": {"dir": "out"}})
    config = load_config(path)
    assert config.model.factory == f"{config_dir / 'models.py'}:tiny_mlp"
    assert config.data.train["path"] == str(config_dir / "data" / "train.csv")
    assert config.output.dir == str(config_dir / "out")


def test_unknown_key_names_path_and_nearest(write_config):
    path = write_config({"optimizer": {"typ": "SGD"}})
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "unknown key optimizer.typ; did you mean type?" in str(caught.value)


def test_every_problem_reported_together(write_config):
    path = write_config({"sed": 1, "data": {"batch_size": 0}, "stop": {"max_steps": -5}, "loss": "hinge"})
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "4 problems found" in message
    assert "unknown key sed; did you mean seed?" in message
    assert "data.batch_size: must be greater than 0, got 0" in message
    assert "stop.max_steps: must be greater than 0, got -5" in message
    assert "loss: unknown loss 'hinge'" in message


def test_wrong_types_named(write_config):
    path = write_config({"seed": "zero", "data": {"shuffle": "yes"}})
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "seed: expected a whole number, got 'zero'" in str(caught.value)
    assert "data.shuffle: expected true or false, got 'yes'" in str(caught.value)


def test_yaml_syntax_error_has_line(config_dir):
    path = config_dir / "bad.yaml"
    path.write_text("name: x\nmodel:\n  factory: [unclosed\n")
    with pytest.raises(ConfigError, match=r"line \d+: invalid YAML"):
        load_config(path)


def test_json_syntax_error_has_line(config_dir):
    path = config_dir / "bad.json"
    path.write_text('{\n  "name": "x",\n  "model": }\n')
    with pytest.raises(ConfigError, match="line 3: invalid JSON"):
        load_config(path)


def test_missing_and_empty_files(config_dir):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(config_dir / "nope.yaml")
    empty = config_dir / "empty.yaml"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        load_config(empty)


def test_set_overrides_dotted_keys_with_yaml_values(write_config):
    config = load_config(write_config(), [
        "stop.max_steps=25",
        "optimizer.params={momentum: 0.5, nesterov: true}",
        "scheduler={type: Fixed, params: {lr: 0.05}}",
        "data.shuffle=false",
    ])
    assert config.stop.max_steps == 25
    assert config.optimizer.params == {"momentum": 0.5, "nesterov": True}
    assert config.schedule == Fixed(0.05)
    assert config.data.shuffle is False


def test_set_unknown_key_rejected(write_config):
    with pytest.raises(ConfigError, match=r"--set 'stop.max_step=3': unknown key stop.max_step; did you mean max_steps\?"):
        load_config(write_config(), ["stop.max_step=3"])


def test_set_without_equals_rejected(write_config):
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(write_config(), ["stop.max_steps"])


def test_deepspeed_block_verbatim_needs_an_end(write_config):
    block = {"type": "LRRangeTest", "params": {
        "lr_range_test_min_lr": 0.0001, "lr_range_test_step_size": 200,
        "lr_range_test_step_rate": 5, "lr_range_test_staircase": False}}
    path = write_config({"scheduler": block})
    with pytest.raises(ConfigError, match="set stop.max_steps or stop.max_lr"):
        load_config(path)
    config = load_config(path, ["stop.max_lr=0.005"])
    assert config.schedule == LRRangeTest(1e-4, 200, 5.0, False)


def test_start_lr_not_below_max_lr(write_config):
    with pytest.raises(ConfigError, match="not below stop.max_lr"):
        load_config(write_config({"stop": {"max_lr": 1e-5}}))


def test_optimizer_lr_ignored_with_warning(write_config):
    config = load_config(write_config({"optimizer": {"params": {"lr": 0.1, "momentum": 0.9}}}))
    assert "lr" not in config.optimizer.params
    assert any("optimizer.params.lr=0.1 is ignored" in warning for warning in config.warnings)


def test_unknown_dataset_type_lists_valid(write_config):
    with pytest.raises(ConfigError, match="valid types are sklearn, csv, tensors, factory, synthetic, torchvision"):
        load_config(write_config({"data": {"train": {"type": "parquet"}}}))


def test_unknown_sklearn_name_lists_valid(write_config):
    with pytest.raises(ConfigError, match="valid names are digits, iris, wine, breast_cancer, diabetes"):
        load_config(write_config({"data": {"train": {"type": "sklearn", "name": "mnist"}}}))


def test_compare_builds_one_config_per_entry(write_config):
    path = write_config({"compare": {
        "fixed": {"scheduler": {"type": "Fixed", "params": {"lr": 0.01}}},
        "short": {"scheduler.params.num_steps": 20},
    }})
    configs = load_run_configs(path)
    assert [config.name for config in configs] == ["fixed", "short"]
    assert configs[0].schedule == Fixed(0.01)
    assert configs[1].schedule == ExponentialRangeTest(1e-4, 10.0, 20)
    assert {config.comparison for config in configs} == {"tiny"}


def test_compare_problems_name_the_entry(write_config):
    path = write_config({"compare": {"bad": {"scheduler.params.num_steps": 0}}})
    with pytest.raises(ConfigError, match=r"compare.bad: scheduler.params.num_steps: must be at least 1"):
        load_run_configs(path)


@pytest.mark.parametrize("name", sorted(p.name for p in (Path(__file__).parent.parent / "configs").glob("*.yaml")))
def test_shipped_configs_load(name):
    configs = load_run_configs(Path(__file__).parent.parent / "configs" / name)
    assert configs
    assert all(config.schedule is not None for config in configs)
    raw = yaml.safe_load((Path(__file__).parent.parent / "configs" / name).read_text())
    assert raw["name"]


def test_yaml_exponent_without_dot_is_a_float(config_dir, write_config):
    path = config_dir / "exp.yaml"
    path.write_text(write_config().read_text().replace("start_lr: 0.0001", "start_lr: 1e-4"))
    assert "start_lr: 1e-4" in path.read_text()
    assert load_config(path).schedule.start_lr == 1e-4
    assert load_config(write_config(), ["scheduler.params.end_lr=1e+1"]).schedule.end_lr == 10.0
    assert load_config(write_config(), ["seed=12"]).seed == 12
