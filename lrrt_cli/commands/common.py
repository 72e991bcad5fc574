"""Helpers shared by the subcommands: the stderr console and error rendering."""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from lrrt_cli.errors import LrrtError, NoSuggestionError, UserCodeError

# Results go to stdout; progress, warnings and errors go to stderr.
stderr_console = Console(stderr=True, highlight=False, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])

_state = {"debug": False}


def set_debug(enabled: bool) -> None:
    _state["debug"] = enabled


def debug_enabled() -> bool:
    return _state["debug"]


def print_error(error: LrrtError) -> None:
    """Print a user-facing error to stderr: the message, and for user code its traceback."""
    if isinstance(error, UserCodeError) and error.user_traceback:
        sys.stderr.write(error.user_traceback.rstrip("\n") + "\n")
    prefix = "no suggestion" if isinstance(error, NoSuggestionError) else "error"
    sys.stderr.write(f"{prefix}: {error}\n")
    sys.stderr.flush()


def warn(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")
    sys.stderr.flush()


def handle_errors(command: F) -> F:
    """Turn an ``LrrtError`` raised by a command into a message and its exit code.

    With ``--debug`` the full traceback is printed before the message.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except LrrtError as error:
            if debug_enabled():
                traceback.print_exc()
            print_error(error)
            raise typer.Exit(code=error.exit_code) from None

    return wrapper  # type: ignore[return-value]
