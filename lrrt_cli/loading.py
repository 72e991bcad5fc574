"""Import user callables named as ``FILE.py:CALLABLE`` or ``package.module:CALLABLE``.

Importing a user's module runs that module's code, as running a training
script does. "Cannot import the module" and "the module has no such attribute"
are separate errors, because they need different fixes.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lrrt_cli.errors import ConfigError, UserCodeError

_PACKAGE_DIR = Path(__file__).resolve().parent


def user_traceback(error: BaseException) -> str:
    """Format ``error``'s traceback from the first frame outside lrrt and torch.

    Falls back to the full traceback when no such frame exists.
    """
    frames = traceback.extract_tb(error.__traceback__)
    start = 0
    for index, frame in enumerate(frames):
        if not _is_internal(frame.filename):
            start = index
            break
    else:
        start = 0
    lines = ["Traceback (most recent call last):\n"]
    lines += traceback.format_list(frames[start:])
    lines += traceback.format_exception_only(type(error), error)
    return "".join(lines)


def _is_internal(filename: str) -> bool:
    path = Path(filename)
    if _PACKAGE_DIR in path.parents:
        return True
    parts = path.parts
    return "torch" in parts or "importlib" in parts or filename.startswith("<frozen")


def _load_file_module(file_path: Path, key: str) -> Any:
    if not file_path.is_file():
        raise ConfigError(f"{key}: file {file_path} does not exist; check the path (relative paths start at the config's folder)")
    digest = hashlib.sha1(str(file_path).encode()).hexdigest()[:12]
    module_name = f"lrrt_user_{file_path.stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, file_path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{key}: cannot import {file_path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    # The file's folder goes on sys.path so that it can import its neighbours.
    folder = str(file_path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[module_name]
        raise UserCodeError(
            f"{key}: importing {file_path} raised {type(error).__name__}: {error}",
            user_traceback=user_traceback(error),
        ) from error
    return module


def _load_named_module(module_name: str, key: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and module_name.startswith(error.name):
            raise ConfigError(
                f"{key}: cannot import module {module_name!r} ({error}); install it, or name a file as FILE.py:CALLABLE"
            ) from error
        raise UserCodeError(
            f"{key}: importing {module_name} raised {type(error).__name__}: {error}",
            user_traceback=user_traceback(error),
        ) from error
    except Exception as error:
        raise UserCodeError(
            f"{key}: importing {module_name} raised {type(error).__name__}: {error}",
            user_traceback=user_traceback(error),
        ) from error


def load_callable(spec: str, *, key: str) -> Callable[..., Any]:
    """Import and return the callable that ``spec`` names.

    Args:
        spec: ``/abs/path/FILE.py:NAME`` (paths are resolved by the config) or ``module:NAME``.
        key: the config key that named it, for messages.

    Raises:
        ConfigError: the file or module is missing, or has no callable of that name.
        UserCodeError: importing the module raised an exception.
    """
    module_part, _, name = spec.rpartition(":")
    if module_part.endswith(".py"):
        module = _load_file_module(Path(module_part), key)
        where = module_part
    else:
        module = _load_named_module(module_part, key)
        where = f"module {module_part}"

    target = getattr(module, name, None)
    if target is None or not callable(target):
        available = sorted(
            attribute
            for attribute, value in vars(module).items()
            if callable(value) and not attribute.startswith("_") and getattr(value, "__module__", None) == module.__name__
        )
        listing = ", ".join(available) if available else "none"
        what = "has no callable" if target is None else "has a non-callable attribute"
        raise ConfigError(f"{key}: {where} {what} named {name!r}; callables defined there: {listing}")
    return target


def call_user(function: Callable[..., Any], *args: Any, key: str, **kwargs: Any) -> Any:
    """Call user code, turning any exception into a ``UserCodeError`` with the user's traceback."""
    try:
        return function(*args, **kwargs)
    except Exception as error:
        raise UserCodeError(
            f"{key}: {getattr(function, '__name__', 'the callable')} raised {type(error).__name__}: {error}",
            user_traceback=user_traceback(error),
        ) from error
