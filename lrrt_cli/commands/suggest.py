"""Placeholder: `lrrt suggest` is not implemented yet."""

import typer


def suggest_command() -> None:
    """Not implemented yet."""
    raise typer.Exit(code=1)
