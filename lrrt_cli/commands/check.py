"""``lrrt check CONFIG``: validate a config and show the planned sweep without training."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from lrrt_cli.commands.common import handle_errors, warn


def _preview_steps(planned: int | None) -> list[int]:
    """Return a few update indices spread over the planned sweep."""
    if planned is None or planned <= 1:
        return [0, 1, 10, 100, 1000]
    points = {0, 1, planned // 4, planned // 2, (3 * planned) // 4, planned - 1}
    return sorted(point for point in points if 0 <= point < planned)


def _check_data_specs(config: Any) -> None:
    """Check that data files exist and data factories import, without loading any data."""
    from lrrt_cli.errors import DataError
    from lrrt_cli.loading import load_callable

    for key, spec in (("data.train", config.data.train), ("data.val", config.data.val)):
        if not spec or "type" not in spec:
            continue
        if spec["type"] in ("csv", "tensors") and not Path(spec["path"]).is_file():
            raise DataError(f"{key}.path: file {spec['path']} does not exist; check the path "
                            "(relative paths start at the config's folder)")
        if spec["type"] == "factory":
            load_callable(spec["factory"], key=f"{key}.factory")


def _check_one(config: Any) -> None:
    from lrrt_cli.api import optimizer_class
    from lrrt_cli.config import default_output_dir
    from lrrt_cli.loading import load_callable
    from lrrt_cli.schedules import planned_steps

    for message in config.warnings:
        warn(message)
    # Importing the named callables catches a wrong file or name before any training.
    load_callable(config.model.factory, key="model.factory")
    for key, spec in (("training.step", config.training.step), ("loss", config.loss)):
        if spec and ":" in spec:
            load_callable(spec, key=key)
    optimizer_class(config.optimizer.type)
    _check_data_specs(config)

    assert config.schedule is not None
    planned = planned_steps(config.schedule, max_steps=config.stop.max_steps, max_lr=config.stop.max_lr)
    resolved = config.to_dict()
    resolved["output"]["dir"] = str(default_output_dir(config))
    typer.echo(yaml.safe_dump(resolved, sort_keys=False).rstrip())
    typer.echo(f"planned updates: {planned if planned is not None else 'until divergence'}")
    typer.echo("planned LR:")
    for step in _preview_steps(planned):
        typer.echo(f"  step {step:>7}: {config.schedule.lr_at(step):.6g}")


@handle_errors
def check_command(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG", help="YAML or JSON run config.")],
    overrides: Annotated[list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help="Override a config entry (dotted key, YAML value); repeatable.")] = None,
) -> None:
    """Validate a config, print the resolved values and the planned LR at a few steps, without training."""
    from lrrt_cli.config import load_run_configs

    configs = load_run_configs(config_path, overrides or [])
    for config in configs:
        if len(configs) > 1:
            typer.echo(f"# run {config.name}")
        _check_one(config)
    typer.echo(f"config {config_path} is valid")
