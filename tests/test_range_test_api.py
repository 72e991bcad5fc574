"""The in-memory range test: results, suggestion, plot, and state restore."""

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lrrt_cli.range_test import range_test
from lrrt_cli.schedules import LRRangeTest


def make_parts(seed: int = 0):
    torch.manual_seed(seed)
    inputs = torch.randn(256, 20)
    targets = (inputs[:, :4].argmax(dim=1))
    loader = DataLoader(TensorDataset(inputs, targets), batch_size=16, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    model = nn.Sequential(nn.Linear(20, 32), nn.Dropout(0.1), nn.ReLU(), nn.Linear(32, 4))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    return model, optimizer, loader


def train_epoch(model, optimizer, loader):
    losses = []
    for inputs, targets in loader:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(inputs), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_training_after_test_matches_training_without():
    torch.manual_seed(123)
    model_a, optimizer_a, loader_a = make_parts()
    torch.manual_seed(7)
    losses_without = train_epoch(model_a, optimizer_a, loader_a)

    torch.manual_seed(123)
    model_b, optimizer_b, loader_b = make_parts()
    torch.manual_seed(7)
    result = range_test(model_b, optimizer_b, loader_b, start_lr=1e-5, end_lr=10.0, num_steps=60)
    assert len(result.rows) > 10
    assert optimizer_b.param_groups[0]["lr"] == 3e-3
    losses_with = train_epoch(model_b, optimizer_b, loader_b)

    assert losses_with == losses_without
    for parameter_a, parameter_b in zip(model_a.parameters(), model_b.parameters()):
        assert torch.equal(parameter_a, parameter_b)


def test_without_restore_model_is_trained():
    model, optimizer, loader = make_parts()
    before = [parameter.detach().clone() for parameter in model.parameters()]
    range_test(model, optimizer, loader, start_lr=1e-4, end_lr=1e-2, num_steps=10, restore=False)
    assert any(not torch.equal(old, new) for old, new in zip(before, model.parameters()))


def test_deepspeed_schedule_lrs():
    model, optimizer, loader = make_parts()
    schedule = LRRangeTest(1e-3, 10, 5)
    result = range_test(model, optimizer, loader, schedule=schedule, max_steps=20)
    assert result.lr == [schedule.lr_at(step) for step in range(20)]
    assert result.stop_reason == "max_steps"


def test_suggestion_and_plot(tmp_path):
    model, _, loader = make_parts()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    result = range_test(model, optimizer, loader, start_lr=1e-4, end_lr=100.0, num_steps=150)
    assert result.stop_reason in ("diverged", "non_finite_loss")
    suggestion = result.suggest(batch_size=64)
    assert math.isfinite(suggestion.params.cycle_max_lr)
    assert suggestion.params.cycle_max_lr < result.sweep.stop_lr
    path = result.plot(tmp_path / "curve.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_unbounded_schedule_needs_a_limit():
    from lrrt_cli.errors import ConfigError

    model, optimizer, loader = make_parts()
    with pytest.raises(ConfigError, match="pass max_steps or max_lr"):
        range_test(model, optimizer, loader, schedule=LRRangeTest(1e-3, 10, 5))


def test_user_error_restores_state_then_raises():
    from lrrt_cli.errors import UserCodeError

    model, optimizer, loader = make_parts()
    before = [parameter.detach().clone() for parameter in model.parameters()]
    calls = {"count": 0}

    def step(model, batch):
        calls["count"] += 1
        if calls["count"] > 5:
            raise RuntimeError("broken step")
        return nn.functional.cross_entropy(model(batch[0]), batch[1])

    with pytest.raises(UserCodeError, match="broken step"):
        range_test(model, optimizer, loader, step=step, start_lr=1e-3, end_lr=1.0, num_steps=20)
    for old, new in zip(before, model.parameters()):
        assert torch.equal(old, new)
