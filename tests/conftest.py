"""Shared helpers: a minimal valid config for a tiny, fast, seeded real run."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

FIXTURES = Path(__file__).parent / "fixtures"
REPO_ROOT = Path(__file__).resolve().parent.parent

TINY_CONFIG: dict[str, Any] = {
    "name": "tiny",
    "seed": 0,
    "device": "cpu",
    "model": {"factory": "models.py:tiny_mlp"},
    "data": {
        "train": {"type": "synthetic", "num_samples": 256, "num_features": 20, "num_classes": 4},
        "batch_size": 16,
    },
    "loss": "cross_entropy",
    "optimizer": {"type": "SGD", "params": {"momentum": 0.9}},
    "scheduler": {"type": "ExponentialRangeTest", "params": {"start_lr": 1e-4, "end_lr": 10.0, "num_steps": 60}},
}


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(base)
    for key, value in changes.items():
        # A mapping with a "type" (a dataset spec or a sweep) replaces the old one whole.
        if isinstance(value, dict) and isinstance(result.get(key), dict) and "type" not in value:
            result[key] = merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A folder holding the fixture model module, where configs are written."""
    folder = tmp_path / "cfg"
    folder.mkdir()
    (folder / "models.py").write_text((FIXTURES / "models.py").read_text())
    return folder


@pytest.fixture
def write_config(config_dir: Path):
    """Write TINY_CONFIG merged with changes as YAML; return its path."""

    def write(changes: dict[str, Any] | None = None, *, name: str = "run.yaml", drop: tuple[str, ...] = ()) -> Path:
        data = merge(TINY_CONFIG, changes or {})
        for key in drop:
            data.pop(key, None)
        path = config_dir / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write
