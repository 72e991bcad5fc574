"""Exact values of the sweep loop, the run folder and the data split, on tiny seeded real parts."""

import copy
import json
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lrrt_cli import api
from lrrt_cli.config import load_config
from lrrt_cli.data import build_loaders
from lrrt_cli.engine import SweepSettings, run_sweep
from lrrt_cli.results import load_results
from lrrt_cli.schedules import ExponentialRangeTest, Fixed, LRRangeTest
from lrrt_cli.steps import build_step_function
from lrrt_cli.stopping import DivergenceRule

CPU = torch.device("cpu")


def classification_data(num_samples=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(num_samples, 20, generator=generator)
    targets = torch.randint(0, 4, (num_samples,), generator=generator)
    return TensorDataset(inputs, targets)


def seeded_linear(seed=0):
    torch.manual_seed(seed)
    return nn.Linear(20, 4)


def cross_entropy_step_failing_at(bad_update):
    """Return a cross-entropy step whose loss is NaN on call ``bad_update`` (0-based), and its call list."""
    calls = []

    def step(model, batch):
        calls.append(len(calls))
        loss = nn.functional.cross_entropy(model(batch[0]), batch[1])
        return loss * math.nan if len(calls) - 1 == bad_update else loss

    return step, calls


# ---------------------------------------------------------------- one update


def test_accumulated_update_equals_full_batch_update():
    dataset = classification_data(16)
    accumulated_model = seeded_linear()
    full_model = copy.deepcopy(accumulated_model)
    step = build_step_function("cross_entropy")

    accumulated = run_sweep(
        accumulated_model, torch.optim.SGD(accumulated_model.parameters()),
        DataLoader(dataset, batch_size=4), step,
        SweepSettings(schedule=Fixed(0.5), max_steps=1, gradient_accumulation_steps=4), device=CPU,
    )
    full = run_sweep(
        full_model, torch.optim.SGD(full_model.parameters()),
        DataLoader(dataset, batch_size=16), step,
        SweepSettings(schedule=Fixed(0.5), max_steps=1), device=CPU,
    )

    assert accumulated.rows[0]["samples"] == 16
    assert accumulated.rows[0]["loss"] == pytest.approx(full.rows[0]["loss"], rel=1e-6)
    for after_accumulation, after_full in zip(accumulated_model.parameters(), full_model.parameters()):
        assert torch.allclose(after_accumulation, after_full, rtol=0, atol=1e-6)


def test_grad_norm_clipping_bounds_update():
    model = seeded_linear()
    before = [parameter.detach().clone() for parameter in model.parameters()]
    settings = SweepSettings(schedule=Fixed(1.0), max_steps=1, max_grad_norm=1e-3)

    run_sweep(model, torch.optim.SGD(model.parameters()), DataLoader(classification_data(16), batch_size=16),
              build_step_function("cross_entropy"), settings, device=CPU)

    # One plain SGD step at LR 1 moves the parameters by exactly the clipped gradient.
    moved = torch.cat([(after - old).flatten() for after, old in zip(model.parameters(), before)])
    assert moved.norm().item() == pytest.approx(1e-3, rel=1e-3)


def test_samples_count_every_process():
    model = seeded_linear()
    settings = SweepSettings(schedule=Fixed(0.01), max_steps=3, world_size=2)
    result = run_sweep(model, torch.optim.SGD(model.parameters()), DataLoader(classification_data(32), batch_size=8),
                       build_step_function("cross_entropy"), settings, device=CPU)
    assert [row["samples"] for row in result.rows] == [16, 32, 48]


# ---------------------------------------------------------------- stopping


def test_lr_equal_to_max_lr_still_runs():
    model = seeded_linear()
    # 0.25 * (1 + k) is exact in binary: 0.25, 0.5, 0.75, 1.0, 1.25, ...
    settings = SweepSettings(schedule=LRRangeTest(0.25, 1, 1), max_lr=1.0)
    result = run_sweep(model, torch.optim.SGD(model.parameters()), DataLoader(classification_data(16), batch_size=4),
                       build_step_function("cross_entropy"), settings, device=CPU)
    assert [row["lr"] for row in result.rows] == [0.25, 0.5, 0.75, 1.0]
    assert result.stop_reason == "max_lr"
    assert result.stop_step == 3
    assert result.stop_lr == 1.0


def test_nan_stops_without_extra_update():
    step, calls = cross_entropy_step_failing_at(6)
    model = seeded_linear()
    result = run_sweep(model, torch.optim.SGD(model.parameters()), DataLoader(classification_data(16), batch_size=4),
                       step, SweepSettings(schedule=Fixed(0.01), max_steps=50), device=CPU)
    assert result.stop_reason == "non_finite_loss"
    assert len(calls) == 7
    assert len(result.rows) == 7
    assert math.isnan(result.rows[-1]["loss"])


def test_nan_in_last_unsynced_rows_beats_max_steps():
    # Losses reach the stop rules every 4 updates, so the NaN of update 8 is only seen
    # after max_steps has ended the loop. The recorded reason must still be the NaN.
    step, _ = cross_entropy_step_failing_at(8)
    model = seeded_linear()
    settings = SweepSettings(schedule=Fixed(0.01), max_steps=10, sync_interval=4)
    result = run_sweep(model, torch.optim.SGD(model.parameters()), DataLoader(classification_data(16), batch_size=4),
                       step, settings, device=CPU)
    assert result.stop_reason == "non_finite_loss"
    assert result.stop_step == 8
    assert [row["step"] for row in result.rows] == list(range(9))


def test_best_loss_row_matches_recorded_rows():
    model = seeded_linear()
    settings = SweepSettings(schedule=ExponentialRangeTest(1e-3, 1.0, 40),
                             divergence=DivergenceRule(factor=None, burn_in_steps=5))
    result = run_sweep(model, torch.optim.SGD(model.parameters()), DataLoader(classification_data(64), batch_size=8),
                       build_step_function("cross_entropy"), settings, device=CPU)
    smoothed = [row["smoothed_loss"] for row in result.rows]
    best_step = 5 + int(np.argmin(smoothed[5:]))
    assert result.best_step == best_step
    assert result.best_lr == result.rows[best_step]["lr"]
    assert result.best_loss == smoothed[best_step]


# ---------------------------------------------------------------- validation


def input_mean_step(model, batch):
    """A loss equal to the mean of the batch's first input column, with zero gradients."""
    inputs = batch[0]
    return (model(inputs) * 0).sum() + inputs[:, 0].mean()


@pytest.mark.parametrize(("val_batches", "expected"), [(2, 15.5), (3, 19.5), (10, 19.5)])
def test_validation_loss_is_sample_weighted_mean(val_batches, expected):
    # 40 validation rows whose first column is 0..39, in batches of 16, 16 and 8.
    val_inputs = torch.zeros(40, 20)
    val_inputs[:, 0] = torch.arange(40, dtype=torch.float32)
    val_loader = DataLoader(TensorDataset(val_inputs, torch.zeros(40, dtype=torch.long)), batch_size=16)
    model = seeded_linear()
    settings = SweepSettings(schedule=Fixed(0.01), max_steps=1, val_batches=val_batches)

    result = run_sweep(model, torch.optim.SGD(model.parameters()), DataLoader(classification_data(16), batch_size=8),
                       input_mean_step, settings, device=CPU, val_loader=val_loader)

    assert result.rows[0]["val_loss"] == expected


# ---------------------------------------------------------------- the run folder


def test_rows_on_disk_before_next_update(tmp_path, write_config):
    config = load_config(write_config({"stop": {"max_steps": 5}}))
    results_path = tmp_path / "run" / "results.csv"
    lines_seen = []

    def on_row(row):
        lines_seen.append(len(results_path.read_text().splitlines()))

    api.run_config(config, tmp_path / "run", on_row=on_row)
    # Header plus every row so far is readable from another handle while the run goes on.
    assert lines_seen == [2, 3, 4, 5, 6]


def test_run_json_records_epochs_best_and_burn_in(tmp_path, write_config):
    # 256 samples in batches of 16 make 16 updates an epoch, so 40 updates start a third epoch.
    config = load_config(write_config({
        "scheduler": {"type": "Fixed", "params": {"lr": 0.05}},
        "stop": {"max_steps": 40, "divergence_factor": None},
    }))
    api.run_config(config, tmp_path / "run")
    metadata = json.loads((tmp_path / "run" / "run.json").read_text())
    results = load_results(tmp_path / "run" / "results.csv")

    assert metadata["num_epochs"] == 3
    assert metadata["planned_steps"] == 40
    assert metadata["burn_in_steps"] == 10
    best_row = 10 + int(np.argmin(results.smoothed_loss[10:]))
    assert metadata["best"]["step"] == best_row
    assert metadata["best"]["lr"] == results.lr[best_row]
    assert metadata["best"]["smoothed_loss"] == results.smoothed_loss[best_row]
    assert metadata["stop"] == {"reason": "max_steps", "step": 39, "lr": 0.05}


def test_non_finite_stop_is_a_completed_run(tmp_path, write_config):
    config = load_config(write_config({"model": {"factory": "models.py:nan_mlp", "kwargs": {"after": 7}}}))
    outcome = api.run_config(config, tmp_path / "run")
    metadata = json.loads((tmp_path / "run" / "run.json").read_text())
    assert outcome.sweep.stop_reason == "non_finite_loss"
    assert metadata["status"] == "completed"
    assert metadata["stop"]["reason"] == "non_finite_loss"
    assert metadata["stop"]["step"] == 7
    assert metadata["error"] is None


# ---------------------------------------------------------------- data


def iris_loaders(write_config, *, seed=0):
    config = load_config(write_config({
        "seed": seed,
        "model": {"kwargs": {"in_features": 4, "num_classes": 3}},
        "data": {"train": {"type": "sklearn", "name": "iris"}, "val": {"fraction": 0.2}},
    }))
    return build_loaders(config)


def test_standardized_with_training_rows_only(write_config):
    loaders = iris_loaders(write_config)
    train_inputs = loaders.train.dataset.tensors[0]
    val_inputs = loaders.val.dataset.tensors[0]
    assert train_inputs.mean(dim=0).abs().max().item() < 1e-5
    assert train_inputs.std(dim=0, unbiased=False).sub(1).abs().max().item() < 1e-4
    # The held-out rows use the training statistics, so their mean is not exactly zero.
    assert val_inputs.mean(dim=0).abs().max().item() > 1e-3


def test_val_fraction_is_shuffled_by_seed(write_config):
    # Iris is sorted by class, so an unshuffled hold-out would be all one class.
    first = iris_loaders(write_config, seed=0)
    other = iris_loaders(write_config, seed=1)
    assert set(first.val.dataset.tensors[1].tolist()) == {0, 1, 2}
    assert not torch.equal(first.val.dataset.tensors[0], other.val.dataset.tensors[0])


def test_val_batches_same_order_every_pass(write_config):
    loaders = iris_loaders(write_config)
    first_pass = [batch[0] for batch in loaders.val]
    second_pass = [batch[0] for batch in loaders.val]
    assert torch.equal(torch.cat(first_pass), loaders.val.dataset.tensors[0])
    assert torch.equal(torch.cat(second_pass), loaders.val.dataset.tensors[0])
