"""The loss of one batch: built-in losses, losses computed by the model, and user steps.

Every variant becomes a *step function* ``(model, batch) -> scalar loss tensor``
that the engine calls once per micro-batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from lrrt_cli.errors import ModelError, UserCodeError
from lrrt_cli.loading import load_callable, user_traceback

StepFunction = Callable[[nn.Module, Any], torch.Tensor]

BUILTIN_LOSSES: dict[str, Callable[[], nn.Module]] = {
    "cross_entropy": nn.CrossEntropyLoss,
    "mse": nn.MSELoss,
    "l1": nn.L1Loss,
    "smooth_l1": nn.SmoothL1Loss,
    "nll": nn.NLLLoss,
    "bce_with_logits": nn.BCEWithLogitsLoss,
}

_TARGET_KEYS = ("targets", "target", "labels", "label", "y")


def _split_batch(batch: Any) -> tuple[Any, Any]:
    """Return ``(inputs, targets)`` from an ``(x, y)`` pair or a dict with a target key."""
    if isinstance(batch, Mapping):
        for key in _TARGET_KEYS:
            if key in batch:
                inputs = {name: value for name, value in batch.items() if name != key}
                return inputs, batch[key]
        raise ModelError(
            f"a dict batch needs a target under one of {', '.join(_TARGET_KEYS)}; it has "
            f"{', '.join(map(str, batch))}; or set training.step to compute the loss yourself"
        )
    if isinstance(batch, (list, tuple)) and len(batch) == 2:
        return batch[0], batch[1]
    raise ModelError(
        f"expected each batch to be an (inputs, targets) pair or a dict, got {type(batch).__name__}"
        + (f" of length {len(batch)}" if isinstance(batch, (list, tuple)) else "")
        + "; set training.step to a FILE.py:CALLABLE that takes (model, batch) and returns the loss"
    )


def _forward(model: nn.Module, inputs: Any) -> Any:
    try:
        if isinstance(inputs, Mapping):
            return model(**inputs)
        return model(inputs)
    except Exception as error:
        raise UserCodeError(
            f"the model's forward pass raised {type(error).__name__}: {error}",
            user_traceback=user_traceback(error),
        ) from error


def _prediction(output: Any) -> torch.Tensor:
    """Pick the prediction out of a model output: a tensor, the first item of a tuple, or ``logits``."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    if isinstance(output, Mapping) and isinstance(output.get("logits"), torch.Tensor):
        return output["logits"]
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    raise ModelError(
        f"cannot find a prediction tensor in the model output of type {type(output).__name__}; "
        "return a tensor, a tuple whose first item is a tensor, or a dict with 'logits'"
    )


def _model_loss(output: Any) -> torch.Tensor:
    """Pick the loss out of a model output, for ``loss: model``."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping) and isinstance(output.get("loss"), torch.Tensor):
        return output["loss"]
    loss = getattr(output, "loss", None)
    if isinstance(loss, torch.Tensor):
        return loss
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise ModelError(
        f"loss: model needs the model to return the loss (a scalar tensor, a dict with 'loss' or an "
        f"object with .loss), got {type(output).__name__}"
    )


def check_scalar_loss(loss: Any, source: str) -> torch.Tensor:
    """Raise ``ModelError`` unless ``loss`` is a one-element floating-point tensor."""
    if not isinstance(loss, torch.Tensor):
        raise ModelError(f"{source} returned {type(loss).__name__}; it must return a scalar loss tensor")
    if loss.numel() != 1:
        raise ModelError(
            f"{source} returned a loss of shape {tuple(loss.shape)}; it must be a scalar, "
            "so reduce it (for example with .mean())"
        )
    if not loss.is_floating_point():
        raise ModelError(f"{source} returned a loss of dtype {loss.dtype}; it must be a floating-point tensor")
    return loss if loss.dim() == 0 else loss.reshape(())


def _builtin_step(name: str) -> StepFunction:
    criterion = BUILTIN_LOSSES[name]()

    def step(model: nn.Module, batch: Any) -> torch.Tensor:
        inputs, targets = _split_batch(batch)
        prediction = _prediction(_forward(model, inputs))
        try:
            loss = criterion(prediction, targets)
        except (RuntimeError, ValueError, IndexError) as error:
            raise ModelError(
                f"loss {name!r} cannot compare the model output of shape {tuple(prediction.shape)} "
                f"({prediction.dtype}) with targets of shape {tuple(targets.shape)} ({targets.dtype}): "
                f"{str(error).splitlines()[0].rstrip('.')}; change the model's output size or the loss"
            ) from error
        return check_scalar_loss(loss, f"loss {name!r}")

    return step


def _callable_loss_step(spec: str) -> StepFunction:
    return loss_function_step(load_callable(spec, key="loss"), f"loss {spec}")


def loss_function_step(loss_function: Callable[[Any, Any], torch.Tensor], name: str) -> StepFunction:
    """Return a step function that calls ``loss_function(prediction, targets)``."""

    def step(model: nn.Module, batch: Any) -> torch.Tensor:
        inputs, targets = _split_batch(batch)
        prediction = _prediction(_forward(model, inputs))
        try:
            loss = loss_function(prediction, targets)
        except Exception as error:
            raise UserCodeError(
                f"{name} raised {type(error).__name__}: {error}", user_traceback=user_traceback(error)
            ) from error
        return check_scalar_loss(loss, name)

    return step


def _model_loss_step(model: nn.Module, batch: Any) -> torch.Tensor:
    if isinstance(batch, Mapping):
        output = _forward(model, batch)
    elif isinstance(batch, (list, tuple)):
        try:
            output = model(*batch)
        except Exception as error:
            raise UserCodeError(
                f"the model's forward pass raised {type(error).__name__}: {error}",
                user_traceback=user_traceback(error),
            ) from error
    else:
        output = _forward(model, batch)
    return check_scalar_loss(_model_loss(output), "the model (loss: model)")


def _user_step(spec: str) -> StepFunction:
    return user_step_function(load_callable(spec, key="training.step"), f"training.step {spec}")


def user_step_function(user_step: Callable[[nn.Module, Any], torch.Tensor], name: str) -> StepFunction:
    """Return a step function that calls the user's ``(model, batch) -> loss`` and checks the loss."""

    def step(model: nn.Module, batch: Any) -> torch.Tensor:
        try:
            loss = user_step(model, batch)
        except Exception as error:
            raise UserCodeError(
                f"{name} raised {type(error).__name__}: {error}",
                user_traceback=user_traceback(error),
            ) from error
        return check_scalar_loss(loss, name)

    return step


def build_step_function(loss: str, step: str | None = None) -> StepFunction:
    """Return the step function for a config's ``loss`` and optional ``training.step``."""
    if step is not None:
        return _user_step(step)
    if loss == "model":
        return _model_loss_step
    if loss in BUILTIN_LOSSES:
        return _builtin_step(loss)
    return _callable_loss_step(loss)
