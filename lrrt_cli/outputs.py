"""The run folder: refusing to overwrite, and writing run.json, the plot and the suggestion.

Torch-free, so the same code serves ``lrrt run`` and tests on hand-written rows.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from lrrt_cli.errors import LrrtError, OutputError
from lrrt_cli.results import (
    PLOT_FILENAME,
    RESULTS_FILENAME,
    RUN_JSON_FILENAME,
    SUGGESTION_FILENAME,
    ResultsWriter,
    atomic_write_json,
    load_results,
)

# The files a run writes; --force replaces these and leaves anything else in the folder alone.
RUN_FILES = (RESULTS_FILENAME, RUN_JSON_FILENAME, SUGGESTION_FILENAME, PLOT_FILENAME)

STATUS_BY_REASON = {"interrupted": "interrupted", "error": "failed"}


class SweepOutcome(Protocol):
    rows: list[dict[str, Any]]
    stop_reason: str
    stop_step: int | None
    stop_lr: float | None
    best_loss: float | None
    best_step: int | None
    best_lr: float | None
    num_epochs: int
    error: BaseException | None


class ScheduleLike(Protocol):
    def lr_at(self, step: int) -> float: ...


@dataclass
class FinishedRun:
    metadata: dict[str, Any]
    suggestion: Any | None = None
    suggestion_error: str | None = None
    warnings: list[str] = field(default_factory=list)


def summarize_schedule(schedule: ScheduleLike, planned_steps: int | None) -> dict[str, Any]:
    """Return the first and planned last LR of a sweep and the decades between them."""
    first = schedule.lr_at(0)
    summary: dict[str, Any] = {"type": type(schedule).__name__, "first_lr": first}
    if planned_steps:
        last = schedule.lr_at(planned_steps - 1)
        summary["planned_last_lr"] = last
        if first > 0 and last > 0:
            summary["decades"] = round(math.log10(last / first), 3)
    return summary


def _check_writable(folder: Path) -> None:
    try:
        handle, name = tempfile.mkstemp(dir=folder, prefix=".lrrt-write-check.")
        os.close(handle)
        os.unlink(name)
    except OSError as error:
        raise OutputError(
            f"output folder {folder} is not writable ({error.strerror}); choose another with --output"
        ) from error


@dataclass
class RunFolder:
    path: Path

    @classmethod
    def prepare(cls, path: Path, *, force: bool) -> RunFolder:
        """Create the run folder, refusing a non-empty one unless ``force`` is set."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise OutputError(f"output path {path} is a file, not a folder; choose a folder with --output")
        if path.is_dir():
            existing = sorted(entry.name for entry in path.iterdir())
            if existing and not force:
                raise OutputError(
                    f"run folder {path} already contains {', '.join(existing[:4])}"
                    f"{' …' if len(existing) > 4 else ''}; pass --force to replace the run, "
                    "or choose another folder with --output"
                )
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OutputError(
                f"cannot create run folder {path} ({error.strerror}); choose another with --output"
            ) from error
        _check_writable(path)
        if force:
            for name in RUN_FILES:
                (path / name).unlink(missing_ok=True)
        return cls(path)

    @property
    def results_path(self) -> Path:
        return self.path / RESULTS_FILENAME

    @property
    def metadata_path(self) -> Path:
        return self.path / RUN_JSON_FILENAME

    @property
    def plot_path(self) -> Path:
        return self.path / PLOT_FILENAME

    @property
    def suggestion_path(self) -> Path:
        return self.path / SUGGESTION_FILENAME

    def write_metadata(self, metadata: dict[str, Any]) -> None:
        atomic_write_json(self.metadata_path, metadata)

    def open_results(self, columns: list[str]) -> ResultsWriter:
        return ResultsWriter(self.results_path, columns)

    def finish(self, sweep: SweepOutcome, metadata: dict[str, Any], config: Any) -> FinishedRun:
        """Write the final run.json, the plot and suggestion.json from the rows on disk."""
        metadata = dict(metadata)
        metadata.update(_sweep_fields(sweep))
        finished = FinishedRun(metadata)
        if sweep.rows:
            self._write_analysis(finished, metadata)
        else:
            metadata["suggestion"] = None
            metadata["suggestion_error"] = "no update completed, so there is no curve to analyse"
        metadata["end_time"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.write_metadata(metadata)
        return finished

    def _write_analysis(self, finished: FinishedRun, metadata: dict[str, Any]) -> None:
        from lrrt_cli.one_cycle import suggest_from_results
        from lrrt_cli.plotting import plot_runs

        results = load_results(self.results_path)
        results.metadata = metadata
        try:
            plot_runs([results], self.plot_path)
            metadata["plot"] = self.plot_path.name
        except LrrtError as error:
            finished.warnings.append(f"the plot could not be written: {error}")
        try:
            suggestion = suggest_from_results(results, batch_size=_target_batch(metadata, results))
        except LrrtError as error:
            metadata["suggestion"] = None
            metadata["suggestion_error"] = str(error)
            finished.suggestion_error = str(error)
            self.suggestion_path.unlink(missing_ok=True)
            return
        if metadata.get("stop", {}).get("reason") == "interrupted":
            suggestion.warnings.append(
                f"this suggestion comes from a sweep interrupted after {metadata['steps_run']} updates, "
                "which may not have reached the LRs where the loss turns up"
            )
        payload = suggestion.to_dict()
        atomic_write_json(self.suggestion_path, payload)
        metadata["suggestion"] = payload
        metadata["suggestion_error"] = None
        finished.suggestion = suggestion
        finished.warnings.extend(getattr(suggestion, "warnings", []))


def _target_batch(metadata: dict[str, Any], results: Any) -> int:
    """Return the run's global batch size: from run.json, else the first row's sample count."""
    if metadata.get("global_batch_size"):
        return int(metadata["global_batch_size"])
    samples = results.samples
    return max(1, int(samples[0])) if samples else 1


def _sweep_fields(sweep: SweepOutcome) -> dict[str, Any]:
    error = None
    if sweep.error is not None:
        error = {"type": type(sweep.error).__name__, "message": str(sweep.error)}
    return {
        "status": STATUS_BY_REASON.get(sweep.stop_reason, "completed"),
        "steps_run": len(sweep.rows),
        "num_epochs": sweep.num_epochs,
        "stop": {"reason": sweep.stop_reason, "step": sweep.stop_step, "lr": sweep.stop_lr},
        "best": {"smoothed_loss": sweep.best_loss, "lr": sweep.best_lr, "step": sweep.best_step},
        "error": error,
    }
