"""Dataset specs to data loaders.

In-memory specs (``sklearn``, ``csv``, ``tensors``, ``synthetic``) become
``TensorDataset``s. When ``standardize`` is on, feature means and standard
deviations come from the training rows only, so validation data does not leak
into them. ``factory`` and ``torchvision`` specs return the
user's own datasets unchanged.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from lrrt_cli.config import RunConfig
from lrrt_cli.errors import ConfigError, DataError
from lrrt_cli.loading import call_user, load_callable


@dataclass
class Loaders:
    train: DataLoader
    val: DataLoader | None
    num_train_samples: int | None  # None when the dataset has no length


@dataclass
class _Arrays:
    """Features and targets held in memory, before they become tensors."""

    inputs: np.ndarray
    targets: np.ndarray
    task: str  # "classification" or "regression"
    standardize: bool
    classes: list[str] | None = None  # CSV class labels, in target-index order


@dataclass
class _Normalization:
    """Feature scaling and class indices, which a validation set shares with its training set."""

    mean: np.ndarray | None
    std: np.ndarray | None
    classes: list[str] | None


# ---------------------------------------------------------------------------
# In-memory dataset specs


def _load_sklearn(spec: dict[str, Any]) -> _Arrays:
    from sklearn import datasets as sklearn_datasets

    loader = getattr(sklearn_datasets, f"load_{spec['name']}")
    inputs, targets = loader(return_X_y=True)
    task = "regression" if spec["name"] == "diabetes" else "classification"
    return _Arrays(inputs, targets, task, spec["standardize"])


def _load_csv(spec: dict[str, Any], classes: list[str] | None = None) -> _Arrays:
    """Load a CSV dataset; ``classes`` fixes the label-to-index map (a validation file uses the training one)."""
    path = Path(spec["path"])
    if not path.is_file():
        raise DataError(f"data: CSV file {path} does not exist; check data.train.path")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 2:
        raise DataError(f"{path}: the CSV has no data rows; a dataset needs a header and at least one row")
    header = [name.strip() for name in rows[0]]
    target = spec["target"]
    if target not in header:
        raise DataError(
            f"{path}: no target column {target!r}; the columns are {', '.join(header)}; "
            "set data.train.target to one of them"
        )
    features = spec["features"] or [name for name in header if name != target]
    missing = [name for name in features if name not in header]
    if missing:
        raise DataError(f"{path}: feature column(s) {', '.join(missing)} not found; the columns are {', '.join(header)}")
    feature_positions = [header.index(name) for name in features]
    target_position = header.index(target)

    inputs = np.empty((len(rows) - 1, len(features)), dtype=np.float64)
    labels: list[str] = []
    for row_index, row in enumerate(rows[1:]):
        line = row_index + 2
        for column_index, position in enumerate(feature_positions):
            inputs[row_index, column_index] = _parse_number(row, position, path, line, features[column_index])
        labels.append(row[target_position].strip() if target_position < len(row) else "")
    if spec["task"] == "classification":
        if classes is None:
            classes = sorted(set(labels), key=_class_sort_key)
        index = {label: position for position, label in enumerate(classes)}
        unknown = sorted(set(labels) - set(index), key=_class_sort_key)
        if unknown:
            raise DataError(
                f"{path}: target value(s) {', '.join(map(repr, unknown[:5]))} do not occur in the "
                f"training data, whose classes are {', '.join(map(repr, classes[:20]))}; "
                "the validation data must use the training classes"
            )
        targets = np.array([index[label] for label in labels], dtype=np.int64)
    else:
        targets = np.array(
            [_parse_number([label], 0, path, line + 2, target) for line, label in enumerate(labels)]
        )
    return _Arrays(inputs, targets, spec["task"], spec["standardize"], classes)


def _class_sort_key(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def _parse_number(row: list[str], position: int, path: Path, line: int, column: str) -> float:
    text = row[position].strip() if position < len(row) else ""
    try:
        return float(text)
    except ValueError:
        raise DataError(
            f"{path}: line {line}, column {column!r}: expected a number, got {text!r}; "
            "fix the value or leave the column out of data.train.features"
        ) from None


def _load_tensors(spec: dict[str, Any]) -> _Arrays:
    path = Path(spec["path"])
    if not path.is_file():
        raise DataError(f"data: tensors file {path} does not exist; check data.train.path")
    if path.suffix == ".npz":
        # allow_pickle=False: an .npz can then hold only plain arrays, never code.
        try:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
        except ValueError as error:
            raise DataError(
                f"{path}: contains object arrays, which only load through pickle ({error}); "
                "lrrt loads .npz files without pickle, so save plain numeric arrays"
            ) from error
    elif path.suffix in (".pt", ".pth"):
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise DataError(
                f"{path}: cannot load with weights_only=True, which loads only tensors and plain "
                f"containers ({type(error).__name__}: {_first_reason(error)}); "
                "save a dict of tensors with torch.save({'inputs': x, 'targets': y}, path)"
            ) from error
        if not isinstance(loaded, dict):
            raise DataError(
                f"{path}: expected a dict of named tensors, got {type(loaded).__name__}; "
                "save a dict of tensors with torch.save({'inputs': x, 'targets': y}, path)"
            )
        arrays = {str(name): value for name, value in loaded.items()}
    else:
        raise DataError(f"{path}: unsupported tensors file type {path.suffix!r}; use .pt or .npz")

    for key in ("inputs", "targets"):
        if spec[key] not in arrays:
            raise DataError(
                f"{path}: no array named {spec[key]!r} (data.train.{key}); "
                f"the file contains {', '.join(sorted(arrays)) or 'no arrays'}; "
                "set data.train.inputs and data.train.targets to the names of its arrays"
            )
    inputs, targets = arrays[spec["inputs"]], arrays[spec["targets"]]
    if isinstance(inputs, torch.Tensor):
        inputs, targets = inputs.numpy(), targets.numpy()
    task = "classification" if np.issubdtype(np.asarray(targets).dtype, np.integer) else "regression"
    return _Arrays(np.asarray(inputs), np.asarray(targets), task, standardize=False)


def _first_reason(error: Exception) -> str:
    """Return one line of a ``torch.load`` error: the unpickler's reason when torch gives one.

    torch's message for a rejected global spans several lines and suggests
    ``weights_only=False``, which lrrt never uses.
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if line.startswith("WeightsUnpickler error:"):
            return line.removeprefix("WeightsUnpickler error:").strip().split(". ")[0]
    return lines[0] if lines else "no message"


def _make_synthetic(spec: dict[str, Any]) -> _Arrays:
    rng = np.random.default_rng(spec["seed"])
    num_samples, num_features = spec["num_samples"], spec["num_features"]
    inputs = rng.standard_normal((num_samples, num_features))
    if spec["task"] == "classification":
        weights = rng.standard_normal((num_features, spec["num_classes"]))
        logits = inputs @ weights + spec["noise"] * rng.standard_normal((num_samples, spec["num_classes"]))
        targets = logits.argmax(axis=1)
    else:
        weights = rng.standard_normal(num_features)
        targets = inputs @ weights + spec["noise"] * rng.standard_normal(num_samples)
    return _Arrays(inputs, targets, spec["task"], standardize=False)


_ARRAY_LOADERS = {
    "sklearn": _load_sklearn,
    "csv": _load_csv,
    "tensors": _load_tensors,
    "synthetic": _make_synthetic,
}


def _to_dataset(arrays: _Arrays, train_rows: np.ndarray, mean: np.ndarray | None, std: np.ndarray | None) -> TensorDataset:
    inputs = arrays.inputs[train_rows].astype(np.float32)
    if mean is not None and std is not None:
        inputs = (inputs - mean) / std
    targets = arrays.targets[train_rows]
    if arrays.task == "classification":
        target_tensor = torch.as_tensor(targets.astype(np.int64))
    else:
        target_tensor = torch.as_tensor(targets.astype(np.float32))
        if target_tensor.dim() == 1:
            target_tensor = target_tensor.unsqueeze(1)
    return TensorDataset(torch.as_tensor(inputs), target_tensor)


def _split_rows(num_rows: int, fraction: float | None, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    if fraction is None:
        return np.arange(num_rows), None
    order = np.random.default_rng(seed).permutation(num_rows)
    num_val = max(1, int(round(fraction * num_rows)))
    if num_val >= num_rows:
        raise DataError(f"data.val.fraction={fraction} leaves no training rows out of {num_rows}; lower it")
    return np.sort(order[num_val:]), np.sort(order[:num_val])


def _feature_scaling(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return per-feature mean and standard deviation for standardizing ``inputs``."""
    mean = inputs.mean(axis=0).astype(np.float32)
    std = inputs.std(axis=0).astype(np.float32)
    std[std == 0] = 1.0  # constant features (e.g. blank pixels) stay constant
    return mean, std


def _load_arrays(spec: dict[str, Any], key: str, classes: list[str] | None = None) -> _Arrays:
    if spec["type"] == "csv":
        arrays = _load_csv(spec, classes)
    else:
        arrays = _ARRAY_LOADERS[spec["type"]](spec)
    if arrays.inputs.ndim == 1:
        arrays.inputs = arrays.inputs[:, None]
    if len(arrays.inputs) == 0:
        raise DataError(f"{key}: the {spec['type']} dataset is empty; it needs at least one row")
    if len(arrays.inputs) != len(arrays.targets):
        raise DataError(
            f"{key}: {len(arrays.inputs)} inputs but {len(arrays.targets)} targets; they must match"
        )
    return arrays


def _in_memory_datasets(
    spec: dict[str, Any], val_fraction: float | None, seed: int
) -> tuple[Dataset, Dataset | None, _Normalization]:
    """Load an in-memory training spec, optionally holding out a seeded validation fraction."""
    arrays = _load_arrays(spec, "data.train")
    train_rows, val_rows = _split_rows(len(arrays.inputs), val_fraction, seed)
    mean, std = _feature_scaling(arrays.inputs[train_rows]) if arrays.standardize else (None, None)
    train = _to_dataset(arrays, train_rows, mean, std)
    val = _to_dataset(arrays, val_rows, mean, std) if val_rows is not None else None
    return train, val, _Normalization(mean, std, arrays.classes)


def _in_memory_val(spec: dict[str, Any], normalization: _Normalization | None) -> Dataset:
    """Load an in-memory validation spec with the training set's scaling and class indices."""
    classes = normalization.classes if normalization else None
    arrays = _load_arrays(spec, "data.val", classes)
    rows = np.arange(len(arrays.inputs))
    if normalization is not None:
        if normalization.mean is not None and arrays.inputs.shape[1] != normalization.mean.shape[0]:
            raise DataError(
                f"data.val: {arrays.inputs.shape[1]} features, but the training data has "
                f"{normalization.mean.shape[0]}; they must match"
            )
        return _to_dataset(arrays, rows, normalization.mean, normalization.std)
    mean, std = _feature_scaling(arrays.inputs) if arrays.standardize else (None, None)
    return _to_dataset(arrays, rows, mean, std)


# ---------------------------------------------------------------------------
# User-provided datasets


def _user_dataset(spec: dict[str, Any], key: str) -> Dataset | DataLoader:
    if spec["type"] == "factory":
        factory = load_callable(spec["factory"], key=f"{key}.factory")
        dataset = call_user(factory, key=f"{key}.factory", **spec["kwargs"])
        if not isinstance(dataset, (Dataset, DataLoader)):
            raise DataError(
                f"{key}.factory returned {type(dataset).__name__}; it must return a torch Dataset or DataLoader"
            )
        return dataset
    try:
        import torchvision.datasets as vision_datasets
        import torchvision.transforms as transforms
    except ImportError as error:
        raise ConfigError(f"{key}.type: torchvision is not installed; install it or use another dataset type") from error
    dataset_class = getattr(vision_datasets, spec["name"], None)
    if dataset_class is None:
        raise ConfigError(f"{key}.name: torchvision has no dataset {spec['name']!r}")
    kwargs = {"root": spec["root"], "download": spec["download"], "train": spec["train"], **spec["kwargs"]}
    kwargs.setdefault("transform", transforms.ToTensor())
    try:
        return dataset_class(**kwargs)
    except RuntimeError as error:
        raise DataError(f"{key}: cannot load torchvision {spec['name']} from {spec['root']}: {error}") from error


def _split_dataset(dataset: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    num_rows = _length(dataset)
    if num_rows is None:
        raise ConfigError("data.val.fraction needs a dataset with a length; give data.val as its own spec instead")
    train_rows, val_rows = _split_rows(num_rows, fraction, seed)
    assert val_rows is not None
    return Subset(dataset, train_rows.tolist()), Subset(dataset, val_rows.tolist())


def _length(data: Dataset | DataLoader) -> int | None:
    try:
        return len(data)  # type: ignore[arg-type]
    except TypeError:
        return None


# ---------------------------------------------------------------------------
# Loaders


def _loader(data: Dataset | DataLoader, config: RunConfig, *, shuffle: bool, drop_last: bool, seed: int) -> DataLoader:
    if isinstance(data, DataLoader):
        return data
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        data,
        batch_size=config.data.batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        num_workers=config.data.num_workers,
        generator=generator,
    )


def _check_not_empty(num_samples: int | None, key: str) -> None:
    # Checked before the DataLoader is built, because a shuffling sampler raises its own
    # ValueError on an empty dataset.
    if num_samples == 0:
        raise DataError(f"{key}: the dataset is empty; it needs at least one sample")


def _check_batches(loader: DataLoader, num_samples: int | None, config: RunConfig, key: str) -> None:
    try:
        num_batches = len(loader)
    except TypeError:
        return
    if num_batches == 0:
        raise DataError(
            f"{key}: data.batch_size={config.data.batch_size} is larger than the {num_samples} samples and "
            "drop_last is on, so no batch can be formed; lower data.batch_size or set data.drop_last: false"
        )


def build_loaders(config: RunConfig) -> Loaders:
    """Build the training loader and, when ``data.val`` is set, the validation loader."""
    train_spec = config.data.train
    val_spec = config.data.val
    val_fraction = val_spec.get("fraction") if val_spec and "type" not in val_spec else None

    normalization = None
    if train_spec["type"] in _ARRAY_LOADERS:
        train, val, normalization = _in_memory_datasets(train_spec, val_fraction, config.seed)
    else:
        train = _user_dataset(train_spec, "data.train")
        val = None
        if val_fraction is not None:
            if isinstance(train, DataLoader):
                raise ConfigError("data.val.fraction cannot split a DataLoader; give data.val as its own spec instead")
            train, val = _split_dataset(train, val_fraction, config.seed)

    if val_spec and "type" in val_spec:
        if val_spec["type"] in _ARRAY_LOADERS:
            val = _in_memory_val(val_spec, normalization)
        else:
            val = _user_dataset(val_spec, "data.val")

    num_train_samples = _length(train)
    _check_not_empty(num_train_samples, "data.train")
    train_loader = _loader(train, config, shuffle=config.data.shuffle, drop_last=config.data.drop_last, seed=config.seed)
    _check_batches(train_loader, num_train_samples, config, "data.train")
    val_loader = None
    if val is not None:
        _check_not_empty(_length(val), "data.val")
        val_loader = _loader(val, config, shuffle=False, drop_last=False, seed=config.seed)
        _check_batches(val_loader, _length(val), config, "data.val")
    return Loaders(train_loader, val_loader, num_train_samples)


def _first_tensor(batch: Any) -> torch.Tensor | None:
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, Mapping):
        values: Any = batch.values()
    elif isinstance(batch, (list, tuple)):
        values = batch
    else:
        return None
    for value in values:
        found = _first_tensor(value)
        if found is not None:
            return found
    return None


def batch_size_of(batch: Any) -> int:
    """Return the number of samples in a batch: the first dimension of its first tensor, or 1."""
    tensor = _first_tensor(batch)
    if tensor is None or tensor.dim() == 0:
        return 1
    return int(tensor.shape[0])


def move_to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor in a batch (nested in mappings, lists and tuples) to ``device``."""
    if isinstance(batch, torch.Tensor):
        # Skipping tensors already in place saves a dispatcher call per tensor per update.
        return batch if batch.device == device else batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        moved = {key: move_to_device(value, device) for key, value in batch.items()}
        return moved if isinstance(batch, dict) else _rebuild_mapping(batch, moved)
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple
        return type(batch)(*(move_to_device(value, device) for value in batch))
    if isinstance(batch, (list, tuple)):
        moved_items = [move_to_device(value, device) for value in batch]
        return moved_items if isinstance(batch, list) else tuple(moved_items)
    return batch


def _rebuild_mapping(batch: Mapping[str, Any], moved: dict[str, Any]) -> Any:
    """Return ``moved`` as the batch's own mapping type when it can be rebuilt from a dict."""
    try:
        return type(batch)(moved)
    except TypeError:
        return moved
