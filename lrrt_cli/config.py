"""The run config: typed sections, YAML/JSON loading, validation and ``--set`` overrides.

Validation collects every problem in a file and raises one ``ConfigError`` that
lists them all, each with its key path. Relative paths inside a config resolve
against the config file's own folder, not the working directory.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from lrrt_cli.errors import ConfigError
from lrrt_cli.schedules import LRRangeTest, Schedule, build_schedule

BUILTIN_LOSSES = ("cross_entropy", "mse", "l1", "smooth_l1", "nll", "bce_with_logits")
SKLEARN_DATASETS = ("digits", "iris", "wine", "breast_cancer", "diabetes")
PRECISIONS = ("fp32", "bf16", "fp16")
_DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@dataclass
class ModelConfig:
    factory: str
    """``FILE.py:CALLABLE`` or ``package.module:CALLABLE``; the callable returns an ``nn.Module``."""
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataConfig:
    train: dict[str, Any]
    """A dataset spec: ``type`` plus that type's keys (see ``DATASET_KEYS``)."""
    val: dict[str, Any] | None = None
    """A dataset spec, or ``{fraction: F}`` to hold out a seeded fraction of ``train``."""
    batch_size: int = 32
    """Samples per batch in each process."""
    shuffle: bool = True
    num_workers: int = 0
    drop_last: bool = False
    val_every: int = 10
    """Evaluate the validation loss every this many optimizer updates."""
    val_batches: int = 4
    """Number of validation batches per evaluation."""


@dataclass
class TrainingConfig:
    gradient_accumulation_steps: int = 1
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    max_grad_norm: float | None = None
    step: str | None = None
    """Optional ``FILE.py:CALLABLE`` taking ``(model, batch)`` and returning the scalar loss."""


@dataclass
class OptimizerConfig:
    type: str = "SGD"
    """Any ``torch.optim`` class name."""
    params: dict[str, Any] = field(default_factory=dict)
    groups: list[dict[str, Any]] | None = None
    """Parameter groups: ``{match: GLOB, lr_scale: X, ...}``; unmatched parameters form group 0."""


@dataclass
class SchedulerConfig:
    type: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class StopConfig:
    max_steps: int | None = None
    max_lr: float | None = None
    divergence_factor: float | None = 4.0
    """Stop when the smoothed loss exceeds this many times the best; ``null`` turns the rule off."""
    burn_in_fraction: float = 0.05
    min_burn_in_steps: int = 10
    smoothing_beta: float = 0.98


@dataclass
class OutputConfig:
    dir: str | None = None
    """Run folder; ``runs/<name>`` in the working directory by default."""


@dataclass(kw_only=True)
class RunConfig:
    name: str = ""
    seed: int = 0
    device: str = "auto"
    model: ModelConfig
    data: DataConfig
    loss: str = "cross_entropy"
    training: TrainingConfig = field(default_factory=TrainingConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig
    stop: StopConfig = field(default_factory=StopConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    source: Path | None = None
    """The config file this was loaded from."""
    schedule: Schedule | None = field(default=None, repr=False)
    """The validated sweep built from ``scheduler``."""
    warnings: list[str] = field(default_factory=list, repr=False)
    """Settings that are valid but have no effect, to show the user."""
    comparison: str | None = None
    """The name of the config that listed this run under ``compare``, if any."""

    def to_dict(self) -> dict[str, Any]:
        """Return the resolved config as plain data, in the file's own layout."""
        data = dataclasses.asdict(self)
        for name in _INTERNAL_FIELDS:
            data.pop(name, None)
        return data


# Keys of each dataset spec type: name -> (kind, required, default).
DATASET_KEYS: dict[str, dict[str, tuple[str, bool, Any]]] = {
    "sklearn": {"name": ("str", True, None), "standardize": ("bool", False, True)},
    "csv": {
        "path": ("path", True, None),
        "target": ("str", True, None),
        "features": ("list", False, None),
        "task": ("task", False, "classification"),
        "standardize": ("bool", False, True),
    },
    "tensors": {
        "path": ("path", True, None),
        "inputs": ("str", False, "inputs"),
        "targets": ("str", False, "targets"),
    },
    "factory": {"factory": ("callable", True, None), "kwargs": ("dict", False, {})},
    "synthetic": {
        "task": ("task", False, "classification"),
        "num_samples": ("count", False, 2048),
        "num_features": ("count", False, 20),
        "num_classes": ("count", False, 4),
        "noise": ("number", False, 0.1),
        "seed": ("int", False, 0),
    },
    "torchvision": {
        "name": ("str", True, None),
        "root": ("path", False, "data"),
        "download": ("bool", False, False),
        "train": ("bool", False, True),
        "kwargs": ("dict", False, {}),
    },
}


# ---------------------------------------------------------------------------
# Reading files and overrides


class _ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader, also reading ``1e-4`` as a float.

    PyYAML follows YAML 1.1, where a float needs a dot (``1.0e-4``), so the
    usual way of writing an LR would otherwise load as a string.
    """


_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 - a SafeLoader subclass


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a YAML or JSON config with a safe loader into a mapping."""
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist; pass the path of a .yaml or .json file")
    if path.is_dir():
        raise ConfigError(f"config path {path} is a folder; pass the path of a .yaml or .json file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read config file {path}: {error}") from error
    if not text.strip():
        raise ConfigError(f"config file {path} is empty; see configs/digits.yaml for a complete example")

    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(
                f"{path}: line {error.lineno}: invalid JSON ({error.msg}); fix the syntax there"
            ) from error
    else:
        try:
            data = parse_yaml(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line = f"line {mark.line + 1}: " if mark is not None else ""
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            fix = "fix the syntax there"
            if isinstance(error, yaml.constructor.ConstructorError):
                fix = "configs are read with a safe loader, which builds no Python objects, so remove the tag"
            raise ConfigError(f"{path}: {line}invalid YAML ({problem}); {fix}") from error
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of sections (model, data, scheduler, ...), "
            f"got {type(data).__name__}"
        )
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``KEY=VALUE`` into a dotted key path and a YAML-parsed value."""
    key, separator, value_text = text.partition("=")
    key = key.strip()
    if not separator or not key or any(part == "" for part in key.split(".")):
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE with a dotted key, for example --set stop.max_steps=200")
    try:
        value = parse_yaml(value_text) if value_text.strip() else None
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(
            f"--set {text!r}: the value is not valid YAML ({problem}); "
            "fix the value, or quote it to pass it as a string, for example --set 'name=\"[draft]\"'"
        ) from error
    return key.split("."), value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``--set KEY=VALUE`` overrides to the parsed file, rejecting unknown keys."""
    problems: list[str] = []
    for text in overrides:
        path, value = parse_override(text)
        problem = _set_key(raw, path, value)
        if problem:
            problems.append(f"--set {text!r}: {problem}")
    if problems:
        raise ConfigError(problems)
    return raw


def _set_key(raw: dict[str, Any], path: list[str], value: Any) -> str | None:
    """Set a dotted key in a raw config mapping; return a problem for an unknown key."""
    problem = _check_known_key(path)
    if problem:
        return problem
    target = raw
    for part in path[:-1]:
        if not isinstance(target.get(part), dict):
            target[part] = {}
        target = target[part]
    target[path[-1]] = value
    return None


def _check_known_key(path: list[str]) -> str | None:
    """Return a problem if ``path`` names no key of the schema (free-form mappings allow any key)."""
    cls: Any = RunConfig
    for depth, part in enumerate(path):
        hints = _type_hints(cls)
        if part not in hints or part in _INTERNAL_FIELDS:
            valid = [name for name in hints if name not in _INTERNAL_FIELDS]
            dotted = ".".join(path[: depth + 1])
            return f"unknown key {dotted}{_nearest(part, valid)}"
        hint = _strip_optional(hints[part])
        if not (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
            return None
        cls = hint
    return None


# ---------------------------------------------------------------------------
# Validation


_INTERNAL_FIELDS = ("source", "schedule", "warnings", "comparison")


def _nearest(key: str, valid: list[str]) -> str:
    match = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    if match:
        return f"; did you mean {match[0]}?"
    return f"; valid keys are {', '.join(valid)}"


def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _strip_optional(hint: Any) -> Any:
    args = typing.get_args(hint)
    if type(hint) is types.UnionType or typing.get_origin(hint) is typing.Union:
        non_none = [arg for arg in args if arg is not type(None)]
        if len(non_none) == 1:
            return non_none[0]
    return hint


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(str(arg) for arg in typing.get_args(hint))
    if origin in (dict,):
        return "a mapping"
    if origin in (list,):
        return "a list"
    return {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}.get(hint, str(hint))


def _coerce(value: Any, hint: Any, key: str, problems: list[str]) -> Any:
    """Check ``value`` against a type hint; record a problem and return None on mismatch."""
    optional = hint is not _strip_optional(hint)
    hint = _strip_optional(hint)
    if value is None:
        if optional:
            return None
        problems.append(f"{key}: must not be null; expected {_describe(hint)}")
        return None
    origin = typing.get_origin(hint)
    ok = True
    if origin is Literal:
        ok = value in typing.get_args(hint)
    elif hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            value = float(value)
    elif hint is str:
        ok = isinstance(value, str)
    elif origin is dict:
        ok = isinstance(value, dict)
    elif origin is list:
        ok = isinstance(value, list)
    if not ok:
        problems.append(f"{key}: expected {_describe(hint)}, got {value!r}")
        return None
    return value


def _build_section(cls: type, raw: Any, key: str, problems: list[str]) -> Any:
    """Build dataclass ``cls`` from ``raw``, recording unknown keys and type errors in ``problems``."""
    if not isinstance(raw, dict):
        problems.append(f"{key}: expected a mapping of keys, got {raw!r}")
        return None
    hints = _type_hints(cls)
    fields = {item.name: item for item in dataclasses.fields(cls) if item.name not in _INTERNAL_FIELDS}
    for name in raw:
        if name not in fields:
            dotted = f"{key}.{name}" if key else str(name)
            problems.append(f"unknown key {dotted}{_nearest(str(name), list(fields))}")

    values: dict[str, Any] = {}
    for name, item in fields.items():
        dotted = f"{key}.{name}" if key else name
        required = item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING
        if name not in raw:
            if required:
                problems.append(f"{dotted}: missing; this key is required")
            continue
        hint = _strip_optional(hints[name])
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            section = _build_section(hint, raw[name] if raw[name] is not None else {}, dotted, problems)
            if section is not None:
                values[name] = section
        else:
            values[name] = _coerce(raw[name], hints[name], dotted, problems)
    try:
        return cls(**values)
    except TypeError:
        return None  # a required key was missing or invalid; already recorded


def _check_positive(value: Any, key: str, problems: list[str], *, allow_zero: bool = False) -> None:
    if value is None:
        return
    if (value < 0) if allow_zero else (value <= 0):
        bound = "0 or greater" if allow_zero else "greater than 0"
        problems.append(f"{key}: must be {bound}, got {value!r}")
    elif isinstance(value, float) and not math.isfinite(value):
        problems.append(f"{key}: must be finite, got {value!r}")


def _resolve_callable(spec: str, base_dir: Path) -> str:
    """Make the file part of ``FILE.py:CALLABLE`` absolute, relative to ``base_dir``."""
    module, _, name = spec.rpartition(":")
    if module.endswith(".py"):
        return f"{(base_dir / module).resolve()}:{name}"
    return spec


def _check_callable_spec(spec: str, key: str, problems: list[str]) -> None:
    module, separator, name = spec.rpartition(":")
    if not separator or not module or not name.isidentifier():
        problems.append(
            f"{key}: expected FILE.py:CALLABLE or package.module:CALLABLE, got {spec!r}"
        )


def _validate_dataset(spec: Any, key: str, base_dir: Path, problems: list[str]) -> dict[str, Any] | None:
    if not isinstance(spec, dict):
        problems.append(f"{key}: expected a dataset spec mapping with a 'type', got {spec!r}")
        return None
    kind = spec.get("type")
    if kind not in DATASET_KEYS:
        problems.append(
            f"{key}.type: unknown dataset type {kind!r}; valid types are {', '.join(DATASET_KEYS)}"
        )
        return None
    keys = DATASET_KEYS[kind]
    resolved: dict[str, Any] = {"type": kind}
    for name in spec:
        if name != "type" and name not in keys:
            problems.append(f"unknown key {key}.{name}{_nearest(str(name), list(keys))}")
    for name, (value_kind, required, default) in keys.items():
        dotted = f"{key}.{name}"
        if name not in spec or spec[name] is None:
            if required:
                problems.append(f"{dotted}: missing; a {kind} dataset needs it")
            resolved[name] = default
            continue
        resolved[name] = _dataset_value(spec[name], value_kind, dotted, base_dir, problems)
    if kind == "sklearn" and resolved.get("name") not in SKLEARN_DATASETS and isinstance(resolved.get("name"), str):
        problems.append(
            f"{key}.name: unknown scikit-learn dataset {resolved['name']!r}; "
            f"valid names are {', '.join(SKLEARN_DATASETS)}"
        )
    return resolved


def _dataset_value(value: Any, kind: str, key: str, base_dir: Path, problems: list[str]) -> Any:
    if kind in ("str", "path", "callable"):
        if not isinstance(value, str) or not value:
            problems.append(f"{key}: expected a string, got {value!r}")
            return None
        if kind == "path":
            return str((base_dir / value).resolve())
        if kind == "callable":
            _check_callable_spec(value, key, problems)
            return _resolve_callable(value, base_dir)
        return value
    if kind == "bool" and not isinstance(value, bool):
        problems.append(f"{key}: expected true or false, got {value!r}")
    elif kind == "task" and value not in ("classification", "regression"):
        problems.append(f"{key}: expected classification or regression, got {value!r}")
    elif kind == "list" and not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
        problems.append(f"{key}: expected a list of column names, got {value!r}")
    elif kind == "dict" and not isinstance(value, dict):
        problems.append(f"{key}: expected a mapping, got {value!r}")
    elif kind in ("count", "int", "number"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{key}: expected a number, got {value!r}")
        elif kind in ("count", "int") and not float(value).is_integer():
            problems.append(f"{key}: expected a whole number, got {value!r}")
        elif kind == "count" and value < 1:
            problems.append(f"{key}: must be at least 1, got {value!r}")
        elif kind == "number" and value < 0:
            problems.append(f"{key}: must be 0 or greater, got {value!r}")
        else:
            return int(value) if kind in ("count", "int") else float(value)
    else:
        return value
    return None


def _validate_val(spec: Any, base_dir: Path, problems: list[str]) -> dict[str, Any] | None:
    if spec is None:
        return None
    if isinstance(spec, dict) and "type" not in spec and "fraction" in spec:
        extra = [name for name in spec if name != "fraction"]
        for name in extra:
            problems.append(f"unknown key data.val.{name}; a held-out split takes only 'fraction'")
        fraction = spec["fraction"]
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
            problems.append(f"data.val.fraction: must be a number between 0 and 1, got {fraction!r}")
            return None
        return {"fraction": float(fraction)}
    return _validate_dataset(spec, "data.val", base_dir, problems)


def _validate_semantics(config: RunConfig, base_dir: Path, problems: list[str]) -> None:
    """Check values and combinations that the types alone do not cover."""
    if not _DEVICE_PATTERN.match(config.device):
        problems.append(f"device: expected auto, cpu, cuda, cuda:N or mps, got {config.device!r}")
    _check_callable_spec(config.model.factory, "model.factory", problems)
    config.model.factory = _resolve_callable(config.model.factory, base_dir)

    data = config.data
    config.data.train = _validate_dataset(data.train, "data.train", base_dir, problems) or data.train
    config.data.val = _validate_val(data.val, base_dir, problems)
    for key in ("batch_size", "val_every", "val_batches"):
        _check_positive(getattr(data, key), f"data.{key}", problems)
    _check_positive(data.num_workers, "data.num_workers", problems, allow_zero=True)

    if config.loss not in BUILTIN_LOSSES and config.loss != "model":
        if ":" in config.loss:
            _check_callable_spec(config.loss, "loss", problems)
            config.loss = _resolve_callable(config.loss, base_dir)
        else:
            problems.append(
                f"loss: unknown loss {config.loss!r}; use one of {', '.join(BUILTIN_LOSSES)}, "
                "'model' (the model returns its loss) or a FILE.py:CALLABLE"
            )

    training = config.training
    _check_positive(training.gradient_accumulation_steps, "training.gradient_accumulation_steps", problems)
    _check_positive(training.max_grad_norm, "training.max_grad_norm", problems)
    if training.step is not None:
        _check_callable_spec(training.step, "training.step", problems)
        training.step = _resolve_callable(training.step, base_dir)

    _validate_optimizer(config, problems)
    _validate_stop(config.stop, problems)
    if config.output.dir is not None:
        config.output.dir = str((base_dir / config.output.dir).resolve())


def _validate_optimizer(config: RunConfig, problems: list[str]) -> None:
    optimizer = config.optimizer
    if "lr" in optimizer.params:
        ignored = optimizer.params["lr"]
        optimizer.params = {key: value for key, value in optimizer.params.items() if key != "lr"}
        config.warnings.append(
            f"optimizer.params.lr={ignored!r} is ignored because the sweep sets the LR of every update"
        )
    for index, group in enumerate(optimizer.groups or []):
        key = f"optimizer.groups[{index}]"
        if not isinstance(group, dict) or not isinstance(group.get("match"), str):
            problems.append(f"{key}: expected a mapping with a 'match' glob, got {group!r}")
            continue
        scale = group.get("lr_scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale <= 0:
            problems.append(f"{key}.lr_scale: must be a number greater than 0, got {scale!r}")


def _validate_stop(stop: StopConfig, problems: list[str]) -> None:
    _check_positive(stop.max_steps, "stop.max_steps", problems)
    _check_positive(stop.max_lr, "stop.max_lr", problems)
    _check_positive(stop.min_burn_in_steps, "stop.min_burn_in_steps", problems, allow_zero=True)
    if stop.divergence_factor is not None and not stop.divergence_factor > 1:
        problems.append(
            f"stop.divergence_factor: must be greater than 1 (or null to turn the rule off), "
            f"got {stop.divergence_factor!r}"
        )
    if not 0 <= stop.burn_in_fraction < 1:
        problems.append(f"stop.burn_in_fraction: must be in [0, 1), got {stop.burn_in_fraction!r}")
    if not 0 <= stop.smoothing_beta < 1:
        problems.append(f"stop.smoothing_beta: must be in [0, 1), got {stop.smoothing_beta!r}")


def _validate_schedule(config: RunConfig, problems: list[str]) -> None:
    try:
        config.schedule = build_schedule(config.scheduler.type, config.scheduler.params)
    except ConfigError as error:
        problems.extend(error.problems)
        return
    schedule = config.schedule
    stop = config.stop
    if isinstance(schedule, LRRangeTest) and stop.max_steps is None and stop.max_lr is None:
        problems.append(
            "stop: LRRangeTest has no end, so set stop.max_steps or stop.max_lr "
            "(for example --set stop.max_lr=1.0)"
        )
    if stop.max_lr is not None and stop.max_lr > 0 and schedule.lr_at(0) >= stop.max_lr:
        problems.append(
            f"stop.max_lr: the sweep starts at LR {schedule.lr_at(0)!r}, which is not below "
            f"stop.max_lr={stop.max_lr!r}; lower the start LR or raise stop.max_lr"
        )


def build_config(raw: dict[str, Any], *, source: Path | None = None) -> RunConfig:
    """Validate a parsed config mapping; raise one ``ConfigError`` listing every problem."""
    base_dir = source.parent.resolve() if source is not None else Path.cwd()
    problems: list[str] = []
    config = _build_section(RunConfig, raw, "", problems)
    if config is not None:
        config.source = source
        if not config.name:
            config.name = source.stem if source is not None else "run"
        _validate_semantics(config, base_dir, problems)
        _validate_schedule(config, problems)
    if problems or config is None:
        raise ConfigError(problems, source=str(source) if source else None)
    return config


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read, override and validate a config file that describes a single run."""
    configs = load_run_configs(path, overrides)
    if len(configs) != 1:
        raise ConfigError(f"{path}: lists {len(configs)} runs under 'compare'; this needs a config for one run")
    return configs[0]


def load_run_configs(path: str | Path, overrides: list[str] | None = None) -> list[RunConfig]:
    """Read, override and validate a config; return one run, or one per ``compare`` entry.

    ``compare`` maps a run name to ``KEY: VALUE`` overrides (dotted keys, as with
    ``--set``) applied to the rest of the file, so one file can describe a fixed
    LR and several sweeps of the same model and data.
    """
    path = Path(path)
    raw = read_config_file(path)
    variants = raw.pop("compare", None)
    apply_overrides(raw, list(overrides or []))
    if variants is None:
        return [build_config(raw, source=path)]
    if not isinstance(variants, dict) or not variants:
        raise ConfigError("compare: expected a mapping of run names to overrides", source=str(path))

    configs: list[RunConfig] = []
    problems: list[str] = []
    for label, changes in variants.items():
        variant_raw = copy.deepcopy(raw)
        if not isinstance(changes, dict):
            problems.append(f"compare.{label}: expected a mapping of KEY: VALUE overrides, got {changes!r}")
            continue
        for key, value in changes.items():
            problem = _set_key(variant_raw, str(key).split("."), copy.deepcopy(value))
            if problem:
                problems.append(f"compare.{label}: {problem}")
        comparison = variant_raw.get("name") or path.stem
        variant_raw["name"] = str(label)
        try:
            config = build_config(variant_raw, source=path)
        except ConfigError as error:
            problems.extend(f"compare.{label}: {problem}" for problem in error.problems)
            continue
        config.comparison = str(comparison)
        configs.append(config)
    if problems:
        raise ConfigError(problems, source=str(path))
    return configs


def comparison_dir(config: RunConfig) -> Path:
    """Return the folder that contains every run of a ``compare`` config."""
    if config.output.dir:
        return Path(config.output.dir)
    return Path("runs") / (config.comparison or config.name)


def default_output_dir(config: RunConfig) -> Path:
    if config.comparison is not None:
        return comparison_dir(config) / config.name
    return Path(config.output.dir) if config.output.dir else Path("runs") / config.name
