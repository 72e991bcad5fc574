"""``lrrt plot``: draw one results file, or overlay several, into a PNG, SVG or PDF file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from lrrt_cli.commands.common import handle_errors
from lrrt_cli.errors import ConfigError

COMPARISON_FILENAME = "comparison.png"


@handle_errors
def plot_command(
    results_files: Annotated[
        list[Path],
        typer.Argument(
            metavar="RESULTS.csv",
            help="Results files to draw: a run's results.csv or any CSV with 'lr' and 'loss' columns.",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Plot file to write; the extension (.png, .svg or .pdf) picks the format. "
            "Default: the first CSV's name with .png for one file, comparison.png beside "
            "the first file for several.",
            show_default=False,
        ),
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--label",
            help="Legend name for a run, replacing the name from run.json or the file name. "
            "Repeat once per results file, in the same order.",
            show_default=False,
        ),
    ] = None,
    title: Annotated[
        str | None,
        typer.Option("--title", help="Figure title. Default: the run names.", show_default=False),
    ] = None,
) -> None:
    """Draw loss against LR, and loss and LR against step, for one or more range tests.

    Prints the path of the written file on stdout.
    """
    # Imported here so that `lrrt --help` and the other commands start without matplotlib.
    from lrrt_cli.plotting import plot_runs
    from lrrt_cli.results import load_results

    labels = label or None
    if labels is not None and len(labels) != len(results_files):
        raise ConfigError(
            f"got {len(labels)} --label value(s) for {len(results_files)} results file(s); "
            "give one --label per results file, in the same order, or none"
        )
    runs = [load_results(path) for path in results_files]
    destination = output if output is not None else default_output(results_files)
    written = plot_runs(runs, destination, labels=labels, title=title)
    typer.echo(str(written))


def default_output(results_files: Sequence[Path]) -> Path:
    """Return the default plot path: ``x.csv`` -> ``x.png`` for one file, else ``comparison.png``."""
    first = Path(results_files[0])
    if len(results_files) == 1:
        return first.with_suffix(".png")
    return first.parent / COMPARISON_FILENAME
