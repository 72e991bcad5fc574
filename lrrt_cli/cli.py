"""The ``lrrt`` command line: a thin Typer layer over the library.

Each subcommand lives in ``lrrt_cli.commands`` and imports torch, if at all,
inside its body, so ``lrrt --help``, ``lrrt plot`` and ``lrrt suggest`` start
without loading torch.
"""

from __future__ import annotations

from typing import Annotated

import typer

from lrrt_cli import __version__
from lrrt_cli.commands import check, plot, run, suggest
from lrrt_cli.commands.common import set_debug

app = typer.Typer(
    name="lrrt",
    help="Learning-rate range tests for PyTorch models, turned into 1Cycle schedules.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain Click help and usage errors: one "Error:" line instead of a drawn box.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"lrrt {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show full tracebacks for every error.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Learning-rate range tests for PyTorch models, turned into 1Cycle schedules."""
    set_debug(debug)


app.command("run")(run.run_command)
app.command("check")(check.check_command)
app.command("plot")(plot.plot_command)
app.command("suggest")(suggest.suggest_command)


def main() -> None:
    app(prog_name="lrrt")
