"""Run a range test from a config: build the parts, run the sweep, write every output.

``run_config`` is what ``lrrt run`` calls. Files are written so that nothing is
lost at a bad moment: ``results.csv`` row by row, ``run.json`` at the start
(status ``running``) and again at the end, and the plot and suggestion
atomically from whatever rows were completed.
"""

from __future__ import annotations

import fnmatch
import inspect
import platform
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lrrt_cli import __version__
from lrrt_cli.config import RunConfig
from lrrt_cli.data import Loaders, build_loaders
from lrrt_cli.engine import SweepResult, SweepSettings, group_lr_columns, run_sweep
from lrrt_cli.errors import ConfigError, LrrtError, ModelError, UserCodeError
from lrrt_cli.loading import call_user, load_callable
from lrrt_cli.outputs import RunFolder, summarize_schedule
from lrrt_cli.results import BASE_COLUMNS
from lrrt_cli.schedules import planned_steps
from lrrt_cli.steps import build_step_function
from lrrt_cli.stopping import DivergenceRule, burn_in_steps

RowCallback = Callable[[dict[str, Any]], None]

# A short last batch in more than this share of updates gets a warning.
SHORT_BATCH_SHARE = 0.05


@dataclass
class RunOutcome:
    """The result of ``run_config``: the sweep result, the run.json content and the file paths."""

    sweep: SweepResult
    metadata: dict[str, Any]
    folder: RunFolder
    suggestion: Any | None = None  # the suggestion object, when one could be made
    suggestion_error: str | None = None
    warnings: list[str] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} was requested but CUDA is not available here; use --device cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device: 'mps' was requested but MPS is not available here; use --device cpu")
    return torch.device(name)


def build_model(config: RunConfig) -> nn.Module:
    factory = load_callable(config.model.factory, key="model.factory")
    model = call_user(factory, key="model.factory", **config.model.kwargs)
    if not isinstance(model, nn.Module):
        raise ModelError(
            f"model.factory {config.model.factory} returned {type(model).__name__}; "
            "it must return a torch.nn.Module"
        )
    return model


def optimizer_class(name: str) -> type[torch.optim.Optimizer]:
    """Return the ``torch.optim`` class called ``name``, or raise ``ConfigError`` listing the valid ones."""
    candidate = getattr(torch.optim, name, None)
    if not (inspect.isclass(candidate) and issubclass(candidate, torch.optim.Optimizer)):
        valid = sorted(
            attribute for attribute, value in vars(torch.optim).items()
            if inspect.isclass(value) and issubclass(value, torch.optim.Optimizer)
            and value is not torch.optim.Optimizer and not _needs_closure(value)
        )
        raise ConfigError(f"optimizer.type: unknown optimizer {name!r}; valid types are {', '.join(valid)}")
    if _needs_closure(candidate):
        raise ConfigError(
            f"optimizer.type: {name} needs a closure that re-evaluates the loss at every step, "
            "which a range test cannot provide; use a first-order optimizer such as SGD or AdamW"
        )
    return candidate


def _needs_closure(optimizer_type: type[torch.optim.Optimizer]) -> bool:
    """Return whether ``optimizer_type.step`` requires a closure argument (LBFGS does)."""
    parameter = inspect.signature(optimizer_type.step).parameters.get("closure")
    return parameter is not None and parameter.default is inspect.Parameter.empty


def _parameter_groups(model: nn.Module, groups: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Split trainable parameters into groups by name glob; the first matching glob wins.

    Group 0 contains the unmatched parameters at the sweep's own LR (scale 1). It is
    kept even when empty, so every configured group runs at exactly ``lr_scale``
    times the sweep value and the ``lr`` column is the sweep value.
    """
    group_specs = groups or []
    default: list[nn.Parameter] = []
    matched: list[list[nn.Parameter]] = [[] for _ in group_specs]
    names = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    if not names:
        raise ModelError(
            "the model from model.factory has no trainable parameters (none with requires_grad=True), "
            "so there is nothing to sweep; return a model with at least one trainable parameter"
        )
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        for index, spec in enumerate(group_specs):
            if fnmatch.fnmatchcase(name, spec["match"]):
                matched[index].append(parameter)
                break
        else:
            default.append(parameter)

    unused = [spec["match"] for spec, parameters in zip(group_specs, matched) if not parameters]
    if unused:
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise ConfigError(
            f"optimizer.groups: the glob(s) {', '.join(map(repr, unused))} match no trainable parameter "
            f"not already taken by an earlier group; the parameter names are {shown}"
        )
    result = [{"params": default, "lr": 1.0}]
    for spec, parameters in zip(group_specs, matched):
        options = {key: value for key, value in spec.items() if key not in ("match", "lr_scale")}
        result.append({"params": parameters, "lr": float(spec.get("lr_scale", 1.0)), **options})
    return result


def describe_groups(optimizer: torch.optim.Optimizer, groups: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Return each parameter group's glob, LR scale and parameter count, for run.json."""
    specs = [{"match": None, "lr_scale": 1.0}] + [
        {"match": spec["match"], "lr_scale": float(spec.get("lr_scale", 1.0))} for spec in groups or []
    ]
    return [
        dict(spec, num_parameters=sum(parameter.numel() for parameter in group["params"]))
        for spec, group in zip(specs, optimizer.param_groups)
    ]


def build_optimizer(config: RunConfig, model: nn.Module) -> torch.optim.Optimizer:
    optimizer_type = optimizer_class(config.optimizer.type)
    groups = _parameter_groups(model, config.optimizer.groups)
    try:
        return optimizer_type(groups, **config.optimizer.params)
    except (TypeError, ValueError) as error:
        accepted = [name for name in inspect.signature(optimizer_type).parameters if name not in ("self", "params")]
        raise ConfigError(
            f"optimizer.params: {config.optimizer.type} rejected {config.optimizer.params!r} ({error}); "
            f"it accepts {', '.join(accepted)}"
        ) from error


def sweep_settings(config: RunConfig, device: torch.device) -> SweepSettings:
    assert config.schedule is not None
    stop = config.stop
    planned = planned_steps(config.schedule, max_steps=stop.max_steps, max_lr=stop.max_lr)
    burn_in = burn_in_steps(planned, stop.burn_in_fraction, stop.min_burn_in_steps)
    return SweepSettings(
        schedule=config.schedule,
        max_steps=stop.max_steps,
        max_lr=stop.max_lr,
        divergence=DivergenceRule(factor=stop.divergence_factor, burn_in_steps=burn_in),
        smoothing_beta=stop.smoothing_beta,
        gradient_accumulation_steps=config.training.gradient_accumulation_steps,
        precision=config.training.precision,
        max_grad_norm=config.training.max_grad_norm,
        val_every=config.data.val_every,
        val_batches=config.data.val_batches,
        # Copying the loss to the host forces a device sync; on CPU it is free.
        sync_interval=1 if device.type == "cpu" else 8,
    )


def results_columns(config: RunConfig, group_columns: list[str]) -> list[str]:
    columns = list(BASE_COLUMNS)
    if config.data.val is not None:
        columns.append("val_loss")
    return columns + group_columns


def _loader_batch_size(loader: Any) -> int | None:
    """Return the loader's batch size, also when it was built with a ``batch_sampler``."""
    if loader.batch_size is not None:
        return int(loader.batch_size)
    size = getattr(loader.batch_sampler, "batch_size", None)
    return int(size) if isinstance(size, int) else None


def batch_warnings(loader: Any, config: RunConfig) -> list[str]:
    """Warn when a short last batch makes many updates smaller than the batch size."""
    batch_size = _loader_batch_size(loader)
    try:
        num_samples = len(loader.dataset)
    except TypeError:
        return []
    if not batch_size or loader.drop_last or num_samples % batch_size == 0:
        return []
    num_batches = -(-num_samples // batch_size)
    if 1 / num_batches <= SHORT_BATCH_SHARE:
        return []
    remainder = num_samples % batch_size
    return [
        f"one update in {num_batches} trains on a short batch of {remainder} samples "
        f"({num_samples} training samples, batch size {batch_size}); set data.drop_last: true "
        "for a constant batch, since the suggestion's step size counts real samples"
    ]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def base_metadata(config: RunConfig, device: torch.device, loaders: Loaders) -> dict[str, Any]:
    assert config.schedule is not None
    per_process = _loader_batch_size(loaders.train)
    accumulation = config.training.gradient_accumulation_steps
    world_size = 1
    planned = planned_steps(config.schedule, max_steps=config.stop.max_steps, max_lr=config.stop.max_lr)
    return {
        "name": config.name,
        "status": "running",
        "lrrt_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "device": str(device),
        "world_size": world_size,
        "batch_size_per_process": per_process,
        "gradient_accumulation_steps": accumulation,
        # None when the loader's batches have no fixed size; the samples column still counts them.
        "global_batch_size": per_process * world_size * accumulation if per_process else None,
        "num_train_samples": loaders.num_train_samples,
        "seed": config.seed,
        "start_time": _now(),
        "end_time": None,
        "planned_steps": planned,
        "schedule": summarize_schedule(config.schedule, planned),
        "config": config.to_dict(),
    }


def run_config(config: RunConfig, run_dir: Path, *, force: bool = False,
               on_start: Callable[[dict[str, Any]], None] | None = None,
               on_row: RowCallback | None = None) -> RunOutcome:
    """Run the range test a config describes and write its outputs to ``run_dir``.

    Raises:
        LrrtError: for invalid configs, data or models (before any training), and
            ``UserCodeError``/``ModelError`` after the outputs were written when
            user code failed mid-run.
    """
    seed_everything(config.seed)
    device = resolve_device(config.device)
    loaders = build_loaders(config)
    model = build_model(config).to(device)
    optimizer = build_optimizer(config, model)
    step_function = build_step_function(config.loss, config.training.step)
    settings = sweep_settings(config, device)
    # The folder is created only now, so a config or data error leaves no empty run folder.
    folder = RunFolder.prepare(run_dir, force=force)

    metadata = base_metadata(config, device, loaders)
    metadata["warnings"] = batch_warnings(loaders.train, config)
    metadata["burn_in_steps"] = settings.divergence.burn_in_steps
    if config.optimizer.groups:
        metadata["param_groups"] = describe_groups(optimizer, config.optimizer.groups)
    group_columns = group_lr_columns(optimizer)
    folder.write_metadata(metadata)
    if on_start is not None:
        on_start(metadata)

    with folder.open_results(results_columns(config, group_columns)) as writer:
        def record(row: dict[str, Any]) -> None:
            writer.append(row)
            if on_row is not None:
                on_row(row)

        sweep = run_sweep(model, optimizer, loaders.train, step_function, settings,
                          device=device, val_loader=loaders.val, on_row=record)

    outcome = folder.finish(sweep, metadata, config)
    if sweep.error is not None:
        if isinstance(sweep.error, LrrtError):
            raise sweep.error
        raise UserCodeError(f"the run failed: {type(sweep.error).__name__}: {sweep.error}") from sweep.error
    return RunOutcome(sweep=sweep, metadata=outcome.metadata, folder=folder,
                      suggestion=outcome.suggestion, suggestion_error=outcome.suggestion_error,
                      warnings=list(config.warnings) + metadata["warnings"] + outcome.warnings)
