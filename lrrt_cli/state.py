"""Snapshots of everything a range test changes, so an in-memory test leaves no trace.

A snapshot contains the model's parameters and buffers, the optimizer's state and
parameter groups (LRs included), and the gradient scaler's state when one is
given. It also contains the random number generators that training draws from:
Python's, numpy's, torch's CPU and CUDA generators, and the data loader's own
generator when it has one. Tensors
are copied to CPU memory, so a GPU model does not keep a second copy on the device.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: _to_cpu(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(item) for item in value)
    return copy.deepcopy(value)


def _loader_generators(loader: DataLoader | None) -> list[torch.Generator]:
    if loader is None:
        return []
    candidates = [getattr(loader, "generator", None), getattr(loader.sampler, "generator", None)]
    batch_sampler = getattr(loader, "batch_sampler", None)
    if batch_sampler is not None:
        candidates.append(getattr(getattr(batch_sampler, "sampler", None), "generator", None))
    unique: list[torch.Generator] = []
    for generator in candidates:
        if isinstance(generator, torch.Generator) and all(generator is not seen for seen in unique):
            unique.append(generator)
    return unique


@dataclass
class TrainingSnapshot:
    """A CPU copy of the training state; ``restore`` puts it back in place."""

    model_state: dict[str, Any]
    optimizer_state: dict[str, Any]
    python_rng: Any
    numpy_rng: Any
    torch_rng: torch.Tensor
    cuda_rng: list[torch.Tensor] | None
    loader_rngs: list[tuple[torch.Generator, torch.Tensor]] = field(default_factory=list)
    scaler_state: dict[str, Any] | None = None

    @classmethod
    def take(cls, model: nn.Module, optimizer: torch.optim.Optimizer, *, loaders: tuple[DataLoader | None, ...] = (),
             scaler: Any = None) -> TrainingSnapshot:
        generators = [generator for loader in loaders for generator in _loader_generators(loader)]
        return cls(
            model_state=_to_cpu(model.state_dict()),
            optimizer_state=_to_cpu(optimizer.state_dict()),
            python_rng=random.getstate(),
            numpy_rng=np.random.get_state(),
            torch_rng=torch.get_rng_state(),
            cuda_rng=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            loader_rngs=[(generator, generator.get_state()) for generator in generators],
            scaler_state=_to_cpu(scaler.state_dict()) if scaler is not None else None,
        )

    def restore(self, model: nn.Module, optimizer: torch.optim.Optimizer, *, scaler: Any = None) -> None:
        model.load_state_dict(self.model_state)
        optimizer.load_state_dict(self.optimizer_state)
        # Gradients left by the last sweep update would otherwise leak into the next step.
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None and self.scaler_state is not None:
            scaler.load_state_dict(self.scaler_state)
        random.setstate(self.python_rng)
        np.random.set_state(self.numpy_rng)
        torch.set_rng_state(self.torch_rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)
        for generator, state in self.loader_rngs:
            generator.set_state(state)
