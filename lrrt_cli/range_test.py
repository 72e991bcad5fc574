"""``range_test``: an LR range test on a model, optimizer and data loader already in memory.

For notebooks and training scripts. The test trains the model in place, then
puts back its weights, the optimizer's state and LRs, and the random number
generators (see ``lrrt_cli.state``), so training after the test matches training
without it. Nothing is written to disk unless ``plot`` is called.

Example::

    from lrrt_cli.range_test import range_test

    result = range_test(model, optimizer, train_loader, start_lr=1e-6, end_lr=1.0, num_steps=200)
    print(result.stop_reason, result.suggest(batch_size=1024).params.cycle_max_lr)
    result.plot("lr_range_test.png")
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from lrrt_cli.engine import SweepResult, SweepSettings, run_sweep
from lrrt_cli.errors import ConfigError
from lrrt_cli.results import Results
from lrrt_cli.schedules import ExponentialRangeTest, Schedule, planned_steps
from lrrt_cli.state import TrainingSnapshot
from lrrt_cli.steps import BUILTIN_LOSSES, StepFunction, build_step_function, loss_function_step, user_step_function
from lrrt_cli.stopping import (
    DEFAULT_BURN_IN_FRACTION,
    DEFAULT_MIN_BURN_IN_STEPS,
    DivergenceRule,
    burn_in_steps,
)


@dataclass
class RangeTestResult:
    """The rows of an in-memory range test, with helpers to analyse and draw them."""

    sweep: SweepResult
    batch_size: int | None  # samples per update, when the loader has a fixed batch size

    @property
    def rows(self) -> list[dict[str, Any]]:
        return self.sweep.rows

    @property
    def lr(self) -> list[float]:
        return [row["lr"] for row in self.rows]

    @property
    def loss(self) -> list[float]:
        return [row["loss"] for row in self.rows]

    @property
    def stop_reason(self) -> str:
        return self.sweep.stop_reason

    def to_results(self, name: str = "range test") -> Results:
        """Return the rows as a ``Results``, the type ``suggest`` and ``plot`` read."""
        columns: dict[str, list[float]] = {
            column: [float(row[column]) for row in self.rows]
            for column in ("step", "lr", "loss", "smoothed_loss", "samples")
        }
        if any("val_loss" in row for row in self.rows):
            columns["val_loss"] = [float(row.get("val_loss", float("nan"))) for row in self.rows]
        metadata = {
            "name": name,
            "global_batch_size": self.batch_size,
            "stop": {"reason": self.sweep.stop_reason, "step": self.sweep.stop_step, "lr": self.sweep.stop_lr},
        }
        return Results(path=Path(f"<{name}>"), columns=columns, metadata=metadata, name=name)

    def suggest(self, *, batch_size: int | None = None, **options: Any) -> Any:
        """Return the 1Cycle suggestion (see ``lrrt_cli.one_cycle.suggest_from_results``).

        ``batch_size`` is the target global batch; it defaults to the test's own.
        """
        from lrrt_cli.one_cycle import suggest_from_results

        target = batch_size or self.batch_size or _first_row_samples(self.rows)
        return suggest_from_results(self.to_results(), batch_size=target, **options)

    def plot(self, output: str | Path, *, title: str | None = None) -> Path:
        """Write the loss-vs-LR figure to ``output`` (PNG, SVG or PDF by extension)."""
        from lrrt_cli.plotting import plot_runs

        return plot_runs([self.to_results()], Path(output), title=title)


def _first_row_samples(rows: list[dict[str, Any]]) -> int:
    return max(1, int(rows[0]["samples"])) if rows else 1


def _step_function(loss: str | Callable[..., torch.Tensor], step: Callable[..., torch.Tensor] | None) -> StepFunction:
    if step is not None:
        return user_step_function(step, "step")
    if callable(loss):
        return loss_function_step(loss, "loss")
    if loss == "model" or loss in BUILTIN_LOSSES:
        return build_step_function(loss)
    raise ConfigError(f"loss: unknown loss {loss!r}; use one of {', '.join(BUILTIN_LOSSES)}, 'model' or a callable")


def _model_device(model: nn.Module) -> torch.device:
    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")


def range_test(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train_loader: DataLoader,
    *,
    loss: str | Callable[..., torch.Tensor] = "cross_entropy",
    step: Callable[[nn.Module, Any], torch.Tensor] | None = None,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    schedule: Schedule | None = None,
    max_steps: int | None = None,
    max_lr: float | None = None,
    divergence_factor: float | None = 4.0,
    val_loader: DataLoader | None = None,
    val_every: int = 10,
    val_batches: int = 4,
    gradient_accumulation_steps: int = 1,
    max_grad_norm: float | None = None,
    precision: str = "fp32",
    restore: bool = True,
) -> RangeTestResult:
    """Run an LR range test in memory and, by default, undo everything it changed.

    Args:
        model: trained in place on its own device during the test.
        optimizer: its parameter groups keep their LR ratios (group 0 gets the sweep value).
        train_loader: yields ``(inputs, targets)`` pairs or dicts; restarted when it runs out.
        loss: a built-in loss name, ``"model"`` when the model returns its loss, or a
            callable ``(prediction, targets) -> loss``.
        step: a callable ``(model, batch) -> loss`` that replaces ``loss``.
        start_lr, end_lr, num_steps: an exponential sweep, used when ``schedule`` is None.
        schedule: any sweep from ``lrrt_cli.schedules``, e.g. DeepSpeed's ``LRRangeTest``.
        restore: put back the weights, optimizer state and RNG states afterwards.

    Returns:
        A ``RangeTestResult`` with one row per optimizer update. Exceptions raised by
        user code during the sweep are re-raised after the state is restored.
    """
    if schedule is None:
        schedule = ExponentialRangeTest(start_lr, end_lr, num_steps)
    planned = planned_steps(schedule, max_steps=max_steps, max_lr=max_lr)
    if planned is None:
        raise ConfigError("this sweep has no end; pass max_steps or max_lr")
    settings = SweepSettings(
        schedule=schedule,
        max_steps=max_steps,
        max_lr=max_lr,
        divergence=DivergenceRule(
            factor=divergence_factor,
            burn_in_steps=burn_in_steps(planned, DEFAULT_BURN_IN_FRACTION, DEFAULT_MIN_BURN_IN_STEPS),
        ),
        gradient_accumulation_steps=gradient_accumulation_steps,
        precision=precision,
        max_grad_norm=max_grad_norm,
        val_every=val_every,
        val_batches=val_batches,
    )
    device = _model_device(model)
    step_function = _step_function(loss, step)
    was_training = model.training
    snapshot = TrainingSnapshot.take(model, optimizer, loaders=(train_loader, val_loader)) if restore else None
    try:
        sweep = run_sweep(model, optimizer, train_loader, step_function, settings, device=device, val_loader=val_loader)
    finally:
        if snapshot is not None:
            snapshot.restore(model, optimizer)
            model.train(was_training)
    if sweep.error is not None:
        raise sweep.error
    batch = train_loader.batch_size
    return RangeTestResult(sweep=sweep, batch_size=batch * gradient_accumulation_steps if batch else None)
