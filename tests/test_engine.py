"""The sweep loop on tiny seeded real models."""

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lrrt_cli import api
from lrrt_cli.config import load_config
from lrrt_cli.data import build_loaders
from lrrt_cli.engine import SweepSettings, run_sweep
from lrrt_cli.errors import ModelError, UserCodeError
from lrrt_cli.schedules import ExponentialRangeTest, Fixed, LinearRangeTest, LRRangeTest
from lrrt_cli.steps import build_step_function
from lrrt_cli.stopping import DivergenceRule

CPU = torch.device("cpu")


def sweep_from_config(write_config, changes=None, overrides=()):
    config = load_config(write_config(changes), list(overrides))
    api.seed_everything(config.seed)
    loaders = build_loaders(config)
    model = api.build_model(config)
    optimizer = api.build_optimizer(config, model)
    step_function = build_step_function(config.loss, config.training.step)
    settings = api.sweep_settings(config, CPU)
    result = run_sweep(model, optimizer, loaders.train, step_function, settings, device=CPU, val_loader=loaders.val)
    return result, optimizer


def tiny_parts(num_samples=64, batch_size=8, seed=0):
    torch.manual_seed(seed)
    inputs = torch.randn(num_samples, 20)
    targets = torch.randint(0, 4, (num_samples,))
    loader = DataLoader(TensorDataset(inputs, targets), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    model = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 4))
    return model, loader


class LrSpy(nn.Module):
    """Records the optimizer's group-0 LR seen during each forward pass."""

    def __init__(self, inner, optimizer_box):
        super().__init__()
        self.inner = inner
        self.optimizer_box = optimizer_box
        self.seen = []

    def forward(self, inputs):
        self.seen.append([group["lr"] for group in self.optimizer_box[0].param_groups])
        return self.inner(inputs)


def test_recorded_lr_is_lr_used_during_update():
    inner, loader = tiny_parts()
    box = []
    model = LrSpy(inner, box)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)  # the constructor LR is never used
    box.append(optimizer)
    schedule = LRRangeTest(1e-4, 200, 5)
    settings = SweepSettings(schedule=schedule, max_steps=30)
    result = run_sweep(model, optimizer, loader, build_step_function("cross_entropy"), settings, device=CPU)
    assert result.rows[0]["lr"] == 1e-4
    assert [row["lr"] for row in result.rows] == [seen[0] for seen in model.seen]
    assert [row["lr"] for row in result.rows] == [schedule.lr_at(k) for k in range(30)]
    assert result.stop_reason == "max_steps"


def test_parameter_groups_keep_ratios():
    model, loader = tiny_parts()
    optimizer = torch.optim.SGD([
        {"params": model[0].parameters(), "lr": 1e-3},
        {"params": model[2].parameters(), "lr": 1e-4},
    ])
    settings = SweepSettings(schedule=ExponentialRangeTest(1e-3, 1.0, 20))
    result = run_sweep(model, optimizer, loader, build_step_function("cross_entropy"), settings, device=CPU)
    assert result.lr_group_columns == ["lr_group_0", "lr_group_1"]
    for row in result.rows:
        assert row["lr_group_0"] == row["lr"]
        assert row["lr_group_1"] == pytest.approx(0.1 * row["lr"], rel=1e-12)
    assert result.rows[-1]["lr"] == 1.0


def test_config_groups_by_glob(write_config):
    result, optimizer = sweep_from_config(write_config, {
        "optimizer": {"groups": [{"match": "2.*", "lr_scale": 0.1}]},
        "scheduler": {"type": "Fixed", "params": {"lr": 0.01}},
        "stop": {"max_steps": 3},
    })
    assert len(optimizer.param_groups) == 2
    assert result.rows[0]["lr_group_1"] == pytest.approx(0.001, rel=1e-12)


def test_data_cycles_across_epochs():
    model, loader = tiny_parts(num_samples=32, batch_size=8)  # 4 batches an epoch
    optimizer = torch.optim.SGD(model.parameters())
    settings = SweepSettings(schedule=Fixed(0.01), max_steps=10)
    result = run_sweep(model, optimizer, loader, build_step_function("cross_entropy"), settings, device=CPU)
    assert len(result.rows) == 10
    assert result.num_epochs == 3
    assert [row["samples"] for row in result.rows] == [8 * (k + 1) for k in range(10)]


def test_gradient_accumulation_one_row_per_update():
    model, loader = tiny_parts(num_samples=64, batch_size=4)
    optimizer = torch.optim.SGD(model.parameters())
    settings = SweepSettings(schedule=LinearRangeTest(0.0, 0.1, 5), gradient_accumulation_steps=4)
    losses = []

    def step(model, batch):
        loss = nn.functional.cross_entropy(model(batch[0]), batch[1])
        losses.append(loss.item())
        return loss

    result = run_sweep(model, optimizer, loader, step, settings, device=CPU)
    assert len(result.rows) == 5
    assert result.stop_reason == "end_of_schedule"
    assert [row["samples"] for row in result.rows] == [16, 32, 48, 64, 80]
    for index, row in enumerate(result.rows):
        assert row["loss"] == pytest.approx(sum(losses[4 * index:4 * index + 4]) / 4, rel=1e-6)


def test_validation_loss_every_n_updates(write_config):
    result, _ = sweep_from_config(write_config, {"data": {"val": {"fraction": 0.25}, "val_every": 5, "val_batches": 2}})
    with_val = [row["step"] for row in result.rows if "val_loss" in row]
    assert with_val == [step for step in range(len(result.rows)) if step % 5 == 0]
    assert all(math.isfinite(row["val_loss"]) for row in result.rows if "val_loss" in row)


def test_seeded_runs_are_identical(write_config):
    first, _ = sweep_from_config(write_config)
    second, _ = sweep_from_config(write_config)
    assert [row["lr"] for row in first.rows] == [row["lr"] for row in second.rows]
    assert [row["loss"] for row in first.rows] == [row["loss"] for row in second.rows]


def test_high_lr_diverges_with_one_reason(write_config):
    result, _ = sweep_from_config(write_config, {"scheduler": {"type": "ExponentialRangeTest", "params": {
        "start_lr": 1e-3, "end_lr": 1e4, "num_steps": 200}}})
    assert result.stop_reason in ("diverged", "non_finite_loss")
    assert len(result.rows) < 200
    assert result.stop_step == result.rows[-1]["step"]
    assert result.best_lr is not None and result.best_lr < result.stop_lr


def test_nan_loss_stops_at_once_and_keeps_row(write_config):
    result, _ = sweep_from_config(write_config, {"model": {"factory": "models.py:nan_mlp", "kwargs": {"after": 7}}})
    assert result.stop_reason == "non_finite_loss"
    assert len(result.rows) == 8
    assert math.isnan(result.rows[-1]["loss"])


def test_max_lr_stops_before_exceeding(write_config):
    result, _ = sweep_from_config(write_config, {"stop": {"max_lr": 1e-2, "divergence_factor": None}})
    assert result.stop_reason == "max_lr"
    assert max(row["lr"] for row in result.rows) <= 1e-2


def test_user_error_mid_run_keeps_rows(write_config):
    result, _ = sweep_from_config(write_config, {"model": {"factory": "models.py:failing_mlp", "kwargs": {"fail_at": 6}}})
    assert result.stop_reason == "error"
    assert len(result.rows) == 6
    assert isinstance(result.error, UserCodeError)
    assert "models.py" in result.error.user_traceback
    assert "raise_user_error" in result.error.user_traceback


def test_shape_mismatch_is_model_error(write_config):
    result, _ = sweep_from_config(write_config, {"model": {"kwargs": {"num_classes": 3}}, "loss": "mse"})
    assert isinstance(result.error, ModelError)
    assert "cannot compare the model output of shape (16, 3)" in str(result.error)


def test_non_scalar_loss_is_model_error(write_config):
    result, _ = sweep_from_config(write_config, {"training": {"step": "models.py:vector_loss_step"}})
    assert isinstance(result.error, ModelError)
    assert "returned a loss of shape (16,); it must be a scalar" in str(result.error)


def test_loss_from_model_output():
    class WithLoss(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(20, 4)

        def forward(self, inputs, targets):
            return {"loss": nn.functional.cross_entropy(self.linear(inputs), targets)}

    _, loader = tiny_parts()
    model = WithLoss()
    optimizer = torch.optim.Adam(model.parameters())
    settings = SweepSettings(schedule=ExponentialRangeTest(1e-4, 1e-2, 6))
    result = run_sweep(model, optimizer, loader, build_step_function("model"), settings, device=CPU)
    assert len(result.rows) == 6
    assert all(math.isfinite(row["loss"]) for row in result.rows)


def test_divergence_rule_off_runs_to_end(write_config):
    result, _ = sweep_from_config(write_config, {"stop": {"divergence_factor": None}, "scheduler": {
        "type": "ExponentialRangeTest", "params": {"start_lr": 1e-4, "end_lr": 1.0, "num_steps": 40}}})
    assert result.stop_reason == "end_of_schedule"
    assert len(result.rows) == 40


def test_interrupt_keeps_completed_rows():
    model, loader = tiny_parts()
    optimizer = torch.optim.SGD(model.parameters())
    calls = {"count": 0}

    def step(model, batch):
        calls["count"] += 1
        if calls["count"] == 6:
            raise KeyboardInterrupt
        return nn.functional.cross_entropy(model(batch[0]), batch[1])

    result = run_sweep(model, optimizer, loader, step, SweepSettings(schedule=Fixed(0.01), max_steps=50), device=CPU)
    assert result.stop_reason == "interrupted"
    assert len(result.rows) == 5


def test_divergence_rule_settings_reach_engine(write_config):
    config = load_config(write_config({"stop": {"divergence_factor": 6, "burn_in_fraction": 0.5}}))
    settings = api.sweep_settings(config, CPU)
    assert settings.divergence == DivergenceRule(factor=6.0, burn_in_steps=30)


def test_frozen_group_stays_at_zero():
    model, loader = tiny_parts()
    frozen_before = [parameter.detach().clone() for parameter in model[0].parameters()]
    optimizer = torch.optim.SGD([
        {"params": model[0].parameters(), "lr": 0.0},
        {"params": model[2].parameters(), "lr": 0.1},
    ])
    settings = SweepSettings(schedule=ExponentialRangeTest(1e-3, 1.0, 10))
    result = run_sweep(model, optimizer, loader, build_step_function("cross_entropy"), settings, device=CPU)
    assert [row["lr_group_0"] for row in result.rows] == [0.0] * 10
    assert result.rows[-1]["lr_group_1"] == 1.0
    for before, after in zip(frozen_before, model[0].parameters()):
        assert torch.equal(before, after)


class EvalCounter(nn.Module):
    """Counts forward calls made in eval mode, and the samples they saw."""

    def __init__(self):
        super().__init__()
        self.inner = nn.Linear(20, 4)
        self.eval_calls = 0
        self.eval_samples = 0

    def forward(self, inputs):
        if not self.training:
            self.eval_calls += 1
            self.eval_samples += inputs.shape[0]
        return self.inner(inputs)


def test_validation_uses_fixed_number_of_batches():
    _, loader = tiny_parts(num_samples=64, batch_size=8)
    val_inputs = torch.randn(40, 20)
    val_loader = DataLoader(TensorDataset(val_inputs, torch.randint(0, 4, (40,))), batch_size=8)
    model = EvalCounter()
    optimizer = torch.optim.SGD(model.parameters())
    settings = SweepSettings(schedule=Fixed(0.01), max_steps=12, val_every=5, val_batches=3)
    result = run_sweep(model, optimizer, loader, build_step_function("cross_entropy"), settings,
                       device=CPU, val_loader=val_loader)
    assert [row["step"] for row in result.rows if "val_loss" in row] == [0, 5, 10]
    assert model.eval_calls == 9
    assert model.eval_samples == 72
    assert model.training
