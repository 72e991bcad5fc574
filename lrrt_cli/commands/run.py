"""``lrrt run CONFIG``: run a range test and write its outputs."""

from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Iterator

import typer

from lrrt_cli.commands.common import handle_errors, stderr_console, warn
from lrrt_cli.errors import RunInterrupted


def _cli_overrides(max_steps: int | None, seed: int | None, device: str | None, overrides: list[str]) -> list[str]:
    """Turn the command-line options into ``--set`` overrides, applied after the file's values."""
    extra = list(overrides)
    if max_steps is not None:
        extra.append(f"stop.max_steps={max_steps}")
    if seed is not None:
        extra.append(f"seed={seed}")
    if device is not None:
        extra.append(f"device={device}")
    return extra


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C, so a killed job still keeps and finishes its outputs."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Progress:
    """A Rich progress bar on stderr showing step, LR, loss and best loss."""

    def __init__(self, quiet: bool):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.quiet = quiet
        self.best: float | None = None
        self.progress = Progress(
            TextColumn("[bold]lrrt"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=stderr_console,
            disable=quiet,
            transient=False,
        )
        self.task: Any = None

    def start(self, metadata: dict[str, Any]) -> None:
        self.progress.start()
        self.task = self.progress.add_task("sweep", total=metadata.get("planned_steps"), status="starting")

    def row(self, row: dict[str, Any]) -> None:
        smoothed = row.get("smoothed_loss")
        if smoothed is not None and smoothed == smoothed and (self.best is None or smoothed < self.best):
            self.best = smoothed
        best = f"{self.best:.4g}" if self.best is not None else "-"
        status = f"step {row['step']}  lr {row['lr']:.3e}  loss {row['loss']:.4g}  best {best}"
        self.progress.update(self.task, advance=1, status=status)

    def stop(self) -> None:
        self.progress.stop()


def _print_summary(outcome: Any) -> None:
    metadata = outcome.metadata
    stop = metadata["stop"]
    if stop["lr"] is None:
        lines = [f"run {metadata['name']}: no update completed"]
    else:
        lines = [
            f"run {metadata['name']}: {metadata['steps_run']} updates on {metadata['device']}, "
            f"stop reason {stop['reason']} at step {stop['step']} (lr {stop['lr']:.4g})"
        ]
    if outcome.suggestion is not None:
        record = outcome.suggestion.to_dict()
        lowest = record["methods"].get("minimum")
        if lowest:
            lines.append(
                f"lowest loss on the plot's centred smoothed curve {lowest['loss']:.4g} at lr {lowest['lr']:.4g}"
            )
        lines.append(
            f"suggested cycle_max_lr {record['cycle_max_lr']:.4g} ({record['method']} method), "
            f"cycle_min_lr {record['cycle_min_lr']:.4g}, for global batch {record['batch']['target']}"
        )
    folder = outcome.folder
    written = [folder.results_path, folder.metadata_path]
    written += [path for path in (folder.plot_path, folder.suggestion_path) if path.exists()]
    lines.append("wrote " + ", ".join(str(path) for path in written))
    for line in lines:
        stderr_console.print(line, markup=False)


def _run_one(config: Any, run_dir: Path, *, force: bool, quiet: bool) -> Any:
    from lrrt_cli.api import run_config

    for message in config.warnings:
        warn(message)
    progress = _Progress(quiet)
    try:
        with _sigterm_as_interrupt():
            outcome = run_config(config, run_dir, force=force, on_start=progress.start, on_row=progress.row)
    finally:
        progress.stop()
    for message in outcome.warnings:
        warn(message)
    if not quiet:
        _print_summary(outcome)
    if outcome.suggestion_error:
        # Shown even with --quiet: otherwise a quiet run without a block prints nothing at all.
        stderr_console.print(f"no suggestion: {outcome.suggestion_error}", markup=False)
    return outcome


def _check_interrupted(outcome: Any) -> None:
    if outcome.sweep.stop_reason == "interrupted":
        raise RunInterrupted(
            f"interrupted after {len(outcome.sweep.rows)} updates; partial results are in {outcome.folder.path}"
        )


def _run_comparison(configs: list[Any], output: Path | None, *, force: bool, quiet: bool) -> None:
    from lrrt_cli.config import comparison_dir, default_output_dir
    from lrrt_cli.plotting import plot_runs
    from lrrt_cli.results import load_results

    base = output if output is not None else comparison_dir(configs[0])
    results = []
    for config in configs:
        run_dir = base / config.name if output is not None else default_output_dir(config)
        outcome = _run_one(config, run_dir, force=force, quiet=quiet)
        if outcome.sweep.rows:
            results.append(load_results(outcome.folder.results_path))
        _check_interrupted(outcome)
    figure_path = base / "comparison.png"
    plot_runs(results, figure_path, title=f"{configs[0].comparison}: {len(results)} runs")
    sys.stdout.write(f"{figure_path}\n")


@handle_errors
def run_command(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG", help="YAML or JSON run config.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Run folder (default: output.dir, or runs/<name>).")] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps", help="Stop after this many optimizer updates.")] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed for the model, data order and splits.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the run files in an existing run folder.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary; the block still prints.")] = False,
    overrides: Annotated[list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help="Override a config entry (dotted key, YAML value); repeatable.")] = None,
) -> None:
    """Run the LR range test a config describes; write results.csv, run.json, the plot and the suggestion.

    A config with a 'compare' section runs each listed variant into its own folder
    and draws them in one comparison.png.

    Example: lrrt run configs/digits.yaml --set stop.max_steps=200
    """
    from lrrt_cli.config import default_output_dir, load_run_configs

    configs = load_run_configs(config_path, _cli_overrides(max_steps, seed, device, overrides or []))
    if len(configs) > 1:
        _run_comparison(configs, output, force=force, quiet=quiet)
        return

    config = configs[0]
    run_dir = output if output is not None else default_output_dir(config)
    outcome = _run_one(config, run_dir, force=force, quiet=quiet)
    if outcome.suggestion is not None:
        sys.stdout.write(outcome.suggestion.render("deepspeed").rstrip("\n") + "\n")
    _check_interrupted(outcome)
