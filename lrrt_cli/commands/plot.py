"""Placeholder: `lrrt plot` is not implemented yet."""

import typer


def plot_command() -> None:
    """Not implemented yet."""
    raise typer.Exit(code=1)
