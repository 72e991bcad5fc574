"""Results files: the append-only ``results.csv``, atomic JSON writes, and loading.

``results.csv`` has one row per optimizer update, written and flushed as the
run goes, so a crash or Ctrl-C leaves every completed row on disk. Loading
accepts any CSV with ``lr`` and ``loss`` columns, in any order, so curves
exported from other LR finders can be plotted and analysed too.
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from lrrt_cli.errors import InputFileError, OutputError

RESULTS_FILENAME = "results.csv"
RUN_JSON_FILENAME = "run.json"
SUGGESTION_FILENAME = "suggestion.json"
PLOT_FILENAME = "results.png"

BASE_COLUMNS = ("step", "lr", "loss", "smoothed_loss", "samples")
REQUIRED_COLUMNS = ("lr", "loss")
# Columns that may be empty in a row: validation loss is only measured every few updates.
OPTIONAL_VALUE_COLUMNS = ("val_loss",)
LR_GROUP_PREFIX = "lr_group_"


def format_value(value: float | int | None) -> str:
    """Format a CSV cell so that floats read back bit for bit (``repr`` round-trips)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


class ResultsWriter:
    """Appends rows to ``results.csv`` and flushes each one to the operating system.

    A flush per row costs one ``write`` system call, which is small next to an
    optimizer update, and means a killed process loses no completed row.
    """

    def __init__(self, path: Path, columns: Iterable[str]):
        self.path = Path(path)
        self.columns = list(columns)
        try:
            self._file: TextIO | None = open(self.path, "w", newline="", encoding="utf-8")
        except OSError as error:
            raise OutputError(
                f"cannot create results file {self.path}: {error.strerror}; "
                "choose a writable output folder with --output"
            ) from error
        self._file.write(",".join(self.columns) + "\n")
        self._file.flush()

    def append(self, row: Mapping[str, Any]) -> None:
        assert self._file is not None, "append() after close()"
        cells = [format_value(row.get(column)) for column in self.columns]
        self._file.write(",".join(cells) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is None:
            return
        self._file.flush()
        try:
            os.fsync(self._file.fileno())
        except OSError:
            pass  # Some file systems (pipes, certain network mounts) do not support fsync.
        self._file.close()
        self._file = None

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    Readers see either the old file or the complete new one, never a partial write.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder; choose another output file")
    try:
        handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise OutputError(
            f"cannot write {path}: {error.strerror}; choose a writable output location"
        ) from error
    try:
        with os.fdopen(handle, "wb") as temp_file:
            temp_file.write(data)
            temp_file.flush()
            os.fsync(temp_file.fileno())
        # mkstemp creates the file private (0600); give it the usual mode for new files.
        os.chmod(temp_name, 0o666 & ~_current_umask())
        os.replace(temp_name, path)
    except BaseException as error:
        try:
            os.unlink(temp_name)
        except OSError:
            pass
        if isinstance(error, OSError):
            raise OutputError(
                f"cannot write {path}: {error.strerror or error}; choose a writable output location"
            ) from error
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def json_safe(value: Any) -> Any:
    """Replace non-finite floats by ``None`` so the JSON is valid for every parser."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def atomic_write_json(path: Path, payload: Any) -> None:
    text = json.dumps(json_safe(payload), indent=2, allow_nan=False) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))


@dataclass
class Results:
    """One loaded curve: numeric columns by name, plus the run's ``run.json`` when present."""

    path: Path
    columns: dict[str, list[float]]
    metadata: dict[str, Any] | None = None
    name: str = ""
    lr_groups: list[str] = field(default_factory=list)

    @property
    def lr(self) -> list[float]:
        return self.columns["lr"]

    @property
    def loss(self) -> list[float]:
        return self.columns["loss"]

    @property
    def step(self) -> list[float]:
        return self.columns.get("step") or [float(index) for index in range(len(self.lr))]

    @property
    def samples(self) -> list[float] | None:
        return self.columns.get("samples")

    @property
    def smoothed_loss(self) -> list[float] | None:
        return self.columns.get("smoothed_loss")

    @property
    def val_loss(self) -> list[float] | None:
        values = self.columns.get("val_loss")
        if values is None or all(math.isnan(value) for value in values):
            return None
        return values

    def __len__(self) -> int:
        return len(self.lr)


def _numeric_columns(header: list[str]) -> list[str]:
    known = set(BASE_COLUMNS) | set(OPTIONAL_VALUE_COLUMNS)
    return [name for name in header if name in known or name.startswith(LR_GROUP_PREFIX)]


def _parse_cell(text: str, *, path: Path, line: int, column: str) -> float:
    text = text.strip()
    if text == "" and column in OPTIONAL_VALUE_COLUMNS:
        return math.nan
    try:
        return float(text)
    except ValueError:
        shown = text if text else "an empty cell"
        raise InputFileError(
            f"{path}: line {line}, column '{column}': expected a number, got {shown!r}; "
            "fix or remove that row"
        ) from None


def _read_header(reader: Any, path: Path) -> list[str]:
    try:
        header = next(reader)
    except StopIteration:
        raise InputFileError(
            f"{path}: the file is empty; expected a CSV header with 'lr' and 'loss' columns"
        ) from None
    header = [name.strip().lower() for name in header]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise InputFileError(
            f"{path}: line 1: missing column(s) {', '.join(missing)} in header "
            f"{','.join(header)!r}; a results file needs 'lr' and 'loss' columns"
        )
    return header


def load_results(path: str | os.PathLike[str]) -> Results:
    """Load a results CSV, validating every numeric cell.

    Raises:
        InputFileError: the file is missing, empty, lacks ``lr`` or ``loss``, has
            a non-numeric cell (the message names the line and column) or has no
            data rows.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise InputFileError(f"results file {path} {what}; pass the path of a results.csv")
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise InputFileError(f"cannot read results file {path}: {error}") from error

    reader = iter(rows)
    header = _read_header(reader, path)
    numeric = _numeric_columns(header)
    positions = {name: header.index(name) for name in numeric}
    columns: dict[str, list[float]] = {name: [] for name in numeric}
    for line_number, row in enumerate(reader, start=2):
        if not row or all(cell.strip() == "" for cell in row):
            continue
        for name, position in positions.items():
            if position >= len(row):
                raise InputFileError(
                    f"{path}: line {line_number}, column '{name}': the row has "
                    f"{len(row)} cells but the header has {len(header)}; fix or remove that row"
                )
            columns[name].append(_parse_cell(row[position], path=path, line=line_number, column=name))
    if not columns["lr"]:
        raise InputFileError(f"{path}: the file has a header but no data rows")

    metadata = load_run_metadata(path.parent / RUN_JSON_FILENAME)
    name = str(metadata.get("name")) if metadata and metadata.get("name") else path.stem
    if name == "results" and not metadata:
        name = path.parent.name or path.stem
    lr_groups = sorted(
        (column for column in numeric if column.startswith(LR_GROUP_PREFIX)),
        key=_group_sort_key,
    )
    return Results(path=path, columns=columns, metadata=metadata, name=name, lr_groups=lr_groups)


def _group_sort_key(column: str) -> tuple[int, int, str]:
    """Sort ``lr_group_N`` columns by N, and columns with other suffixes after them by name."""
    suffix = column[len(LR_GROUP_PREFIX):]
    return (0, int(suffix), "") if suffix.isdigit() else (1, 0, suffix)


def load_run_metadata(path: Path) -> dict[str, Any] | None:
    """Return the parsed ``run.json`` at ``path``, or ``None`` if absent or unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def find_latest_results(runs_dir: str | os.PathLike[str] = "runs") -> Path:
    """Return the most recently modified ``results.csv`` below ``runs_dir``."""
    root = Path(runs_dir)
    candidates = [path for path in root.glob(f"**/{RESULTS_FILENAME}") if path.is_file()]
    if not candidates:
        raise InputFileError(
            f"no {RESULTS_FILENAME} found under {root.resolve()}; "
            "pass a results file, or run 'lrrt run CONFIG' first"
        )
    return max(candidates, key=lambda path: path.stat().st_mtime)
