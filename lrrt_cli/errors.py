"""The user-facing error family and the exit codes the CLI maps it to.

Anything raised from this family is a problem the user can fix (a config key, a
file, a value). The CLI prints its message on one line of stderr with no
traceback and exits with the class's ``exit_code``. Every other exception is a
bug or a failure in user code and keeps its traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_NO_SUGGESTION = 3
EXIT_INTERRUPTED = 130


class LrrtError(Exception):
    """Base of every error that the CLI shows as a message instead of a traceback."""

    exit_code = EXIT_USAGE


class ConfigError(LrrtError):
    """An invalid, missing or unreadable config, or an invalid command-line value.

    ``problems`` lists every problem found, so one run of ``lrrt check`` shows
    them all instead of one per attempt.
    """

    def __init__(self, problems: list[str] | str, *, source: str | None = None):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        self.source = source
        super().__init__(self._format())

    def _format(self) -> str:
        where = f"{self.source}: " if self.source else ""
        if len(self.problems) == 1:
            return f"{where}{self.problems[0]}"
        lines = [f"{where}{len(self.problems)} problems found:"]
        lines += [f"  - {problem}" for problem in self.problems]
        return "\n".join(lines)


class InputFileError(LrrtError):
    """A results file or data file that cannot be read or has invalid content."""


class OutputError(LrrtError):
    """An output location that cannot be written, or a run folder that would be overwritten."""


class DataError(LrrtError):
    """A dataset that is empty, lacks a named column or array, or yields no batches."""


class ModelError(LrrtError):
    """A model factory, loss or training step whose result does not fit the range test."""


class NoSuggestionError(LrrtError):
    """No 1Cycle block can be made from a curve; the message gives the reason."""

    exit_code = EXIT_NO_SUGGESTION


class UserCodeError(LrrtError):
    """An exception raised inside the user's own code (factories, forward pass, step).

    ``user_traceback`` is the traceback text starting at the first frame of the
    user's code, so the CLI can show it without lrrt's internal frames.
    """

    exit_code = EXIT_RUNTIME

    def __init__(self, message: str, *, user_traceback: str = ""):
        self.user_traceback = user_traceback
        super().__init__(message)


class RunInterrupted(LrrtError):
    """The run was stopped by SIGINT or SIGTERM; partial results were kept."""

    exit_code = EXIT_INTERRUPTED
