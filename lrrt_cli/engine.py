"""The sweep loop: set the LR, forward, backward, optimizer step, record, decide whether to stop.

One row is recorded per optimizer update. The LR of update ``k`` is written into
every parameter group before that update's first forward pass, and group ``i``
gets its base ratio to group 0 times the sweep value. The row's LR is read back
from ``optimizer.param_groups[0]``, so the first recorded LR is the sweep's start
LR exactly.

Losses stay on the device and are copied to the host every ``sync_interval``
updates, so a GPU run does not wait on a device-to-host copy at every update.
The stop rules therefore run up to ``sync_interval − 1`` updates late.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from lrrt_cli.data import batch_size_of, move_to_device
from lrrt_cli.errors import DataError
from lrrt_cli.schedules import Schedule
from lrrt_cli.steps import StepFunction
from lrrt_cli.stopping import DEFAULT_SMOOTHING_BETA, DivergenceMonitor, DivergenceRule

RowCallback = Callable[[dict[str, Any]], None]


@dataclass
class SweepSettings:
    """Everything the loop needs besides the model, optimizer and data."""

    schedule: Schedule
    max_steps: int | None = None
    max_lr: float | None = None
    divergence: DivergenceRule = field(default_factory=DivergenceRule)
    smoothing_beta: float = DEFAULT_SMOOTHING_BETA
    gradient_accumulation_steps: int = 1
    precision: str = "fp32"
    max_grad_norm: float | None = None
    val_every: int = 10
    val_batches: int = 4
    sync_interval: int = 1
    world_size: int = 1


@dataclass
class SweepResult:
    """The outcome of a sweep: its rows and why it stopped."""

    rows: list[dict[str, Any]]
    stop_reason: str
    stop_step: int | None = None
    stop_lr: float | None = None
    best_loss: float | None = None
    best_step: int | None = None
    best_lr: float | None = None
    num_epochs: int = 1
    error: BaseException | None = None
    lr_group_columns: list[str] = field(default_factory=list)


class _CyclingIterator:
    """Yields batches forever, starting a new epoch (reshuffled when shuffling is on) when one ends."""

    def __init__(self, loader: DataLoader):
        self.loader = loader
        self.num_epochs = 1
        self._iterator: Iterator[Any] = iter(loader)

    def next_batch(self) -> Any:
        try:
            return next(self._iterator)
        except StopIteration:
            pass
        self.num_epochs += 1
        self._iterator = iter(self.loader)
        try:
            return next(self._iterator)
        except StopIteration:
            raise DataError("data.train: the data loader yielded no batches; check the dataset and batch size") from None


def _autocast(device: torch.device, precision: str) -> Any:
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _lr_ratios(optimizer: torch.optim.Optimizer) -> list[float]:
    """Return each group's LR as a ratio of the reference group's, so sweeps keep the user's ratios.

    The reference is group 0, or the first group with a positive LR when group 0
    has none. A group whose LR is 0 (a frozen group) keeps ratio 0.
    """
    base = [float(group["lr"]) for group in optimizer.param_groups]
    positive = [lr for lr in base if lr > 0]
    if not positive:
        return [1.0] * len(base)
    reference = base[0] if base[0] > 0 else positive[0]
    return [lr / reference if lr > 0 else 0.0 for lr in base]


def group_lr_columns(optimizer: torch.optim.Optimizer) -> list[str]:
    """Return the per-group LR column names, or none when every group gets the same LR."""
    ratios = _lr_ratios(optimizer)
    if all(ratio == 1.0 for ratio in ratios):
        return []
    return [f"lr_group_{index}" for index in range(len(ratios))]


class _Sweep:
    """State of one running sweep. ``run`` is the loop; the methods are its steps."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, train_loader: DataLoader,
                 step_function: StepFunction, settings: SweepSettings, device: torch.device,
                 val_loader: DataLoader | None, on_row: RowCallback | None):
        self.model = model
        self.optimizer = optimizer
        self.step_function = step_function
        self.settings = settings
        self.device = device
        self.val_loader = val_loader
        self.on_row = on_row
        self.batches = _CyclingIterator(train_loader)
        self.monitor = DivergenceMonitor(settings.divergence, settings.smoothing_beta)
        self.ratios = _lr_ratios(optimizer)
        self.group_columns = group_lr_columns(optimizer)
        self.scaler = torch.amp.GradScaler(device.type) if settings.precision == "fp16" else None
        self.rows: list[dict[str, Any]] = []
        self.pending: list[dict[str, Any]] = []  # rows whose loss is still a device tensor
        self.samples = 0

    def planned_stop(self, step: int, lr: float) -> str | None:
        """Return the reason the run ends before update ``step``, if it does."""
        schedule = self.settings.schedule
        if schedule.num_steps is not None and step >= schedule.num_steps:
            return "end_of_schedule"
        if self.settings.max_steps is not None and step >= self.settings.max_steps:
            return "max_steps"
        if self.settings.max_lr is not None and lr > self.settings.max_lr:
            return "max_lr"
        return None

    def set_lr(self, lr: float) -> float:
        for group, ratio in zip(self.optimizer.param_groups, self.ratios):
            group["lr"] = lr * ratio
        return float(self.optimizer.param_groups[0]["lr"])

    def update(self) -> torch.Tensor:
        """Run one optimizer update over its micro-batches; return the mean loss, on the device."""
        accumulation = self.settings.gradient_accumulation_steps
        self.optimizer.zero_grad(set_to_none=True)
        losses = []
        for _ in range(accumulation):
            batch = move_to_device(self.batches.next_batch(), self.device)
            with _autocast(self.device, self.settings.precision):
                loss = self.step_function(self.model, batch)
            # Dividing by 1 would add an autograd node for nothing on every update.
            scaled = loss / accumulation if accumulation > 1 else loss
            if self.scaler is not None:
                self.scaler.scale(scaled).backward()
            else:
                scaled.backward()
            loss = loss.detach()
            losses.append(loss if loss.dtype == torch.float32 else loss.float())
            self.samples += batch_size_of(batch) * self.settings.world_size

        if self.settings.max_grad_norm is not None:
            if self.scaler is not None:
                self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.max_grad_norm)
        if self.scaler is not None:
            # TODO: an fp16 step skipped for overflowing gradients still advances the sweep.
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        return torch.stack(losses).mean() if accumulation > 1 else losses[0]

    @torch.no_grad()
    def validation_loss(self) -> float:
        """Return the sample-weighted mean loss over the first ``val_batches`` validation batches."""
        assert self.val_loader is not None
        was_training = self.model.training
        self.model.eval()
        total, count = 0.0, 0
        try:
            for index, batch in enumerate(self.val_loader):
                if index >= self.settings.val_batches:
                    break
                batch = move_to_device(batch, self.device)
                with _autocast(self.device, self.settings.precision):
                    loss = self.step_function(self.model, batch)
                size = batch_size_of(batch)
                total += float(loss) * size
                count += size
        finally:
            self.model.train(was_training)
        if count == 0:
            raise DataError("data.val: the validation loader yielded no samples; check data.val")
        return total / count

    def flush(self) -> str | None:
        """Copy pending losses to the host, feed the stop rules, emit rows; return a stop reason."""
        for row in self.pending:
            row["loss"] = float(row["loss"])
            record = self.monitor.update(row["loss"])
            row["smoothed_loss"] = record.smoothed_loss
            self.rows.append(row)
            if self.on_row is not None:
                self.on_row(row)
            if record.stop_reason is not None:
                self.pending = []
                return record.stop_reason
        self.pending = []
        return None

    def record(self, step: int, lr: float, loss: torch.Tensor) -> None:
        row: dict[str, Any] = {"step": step, "lr": lr, "loss": loss, "samples": self.samples}
        for column, group in zip(self.group_columns, self.optimizer.param_groups):
            row[column] = float(group["lr"])
        if self.val_loader is not None and step % self.settings.val_every == 0:
            row["val_loss"] = self.validation_loss()
        self.pending.append(row)

    def run(self) -> SweepResult:
        self.model.train()
        stop_reason: str | None = None
        error: BaseException | None = None
        step = 0
        try:
            while stop_reason is None:
                # plan: stop before this update when a limit is reached
                lr = self.settings.schedule.lr_at(step)
                stop_reason = self.planned_stop(step, lr)
                if stop_reason is not None:
                    break

                # train: set the LR, run the update, and keep its loss on the device
                recorded_lr = self.set_lr(lr)
                loss = self.update()
                self.record(step, recorded_lr, loss)

                # decide: every sync_interval updates, copy losses and apply the stop rules
                step += 1
                if len(self.pending) >= self.settings.sync_interval:
                    stop_reason = self.flush()
        except KeyboardInterrupt:
            stop_reason = "interrupted"
        except Exception as caught:  # user code, data or loss errors: keep the rows, report the error
            stop_reason = "error"
            error = caught
        if self.pending:
            # The losses of completed updates are still recorded after an interrupt or error.
            late_reason = self.flush()
            if stop_reason in (None, "max_steps", "max_lr", "end_of_schedule") and late_reason:
                stop_reason = late_reason
        return self.result(stop_reason or "end_of_schedule", error)

    def result(self, stop_reason: str, error: BaseException | None) -> SweepResult:
        last = self.rows[-1] if self.rows else None
        result = SweepResult(
            rows=self.rows,
            stop_reason=stop_reason,
            stop_step=last["step"] if last else None,
            stop_lr=last["lr"] if last else None,
            num_epochs=self.batches.num_epochs,
            error=error,
            lr_group_columns=self.group_columns,
        )
        if self.monitor.best_step is not None:
            best_row = self.rows[self.monitor.best_step]
            result.best_loss = self.monitor.best_loss
            result.best_step = best_row["step"]
            result.best_lr = best_row["lr"]
        return result


def run_sweep(model: nn.Module, optimizer: torch.optim.Optimizer, train_loader: DataLoader,
              step_function: StepFunction, settings: SweepSettings, *, device: torch.device,
              val_loader: DataLoader | None = None, on_row: RowCallback | None = None) -> SweepResult:
    """Run a range test and return its rows and stop reason.

    The model and optimizer must already be on ``device``; batches are moved
    there per update. Exceptions raised by the step function or the data are
    caught and returned in ``SweepResult.error`` with the rows recorded so far.
    ``KeyboardInterrupt`` ends the run as ``interrupted``.
    """
    sweep = _Sweep(model, optimizer, train_loader, step_function, settings, device, val_loader, on_row)
    return sweep.run()

