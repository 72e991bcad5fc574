"""Importing user callables: distinct errors for a missing module and a missing name."""

import pytest

from lrrt_cli.errors import ConfigError, UserCodeError
from lrrt_cli.loading import load_callable


def test_load_from_file(config_dir):
    factory = load_callable(f"{config_dir / 'models.py'}:tiny_mlp", key="model.factory")
    assert factory().__class__.__name__ == "Sequential"


def test_load_from_module():
    assert load_callable("math:sqrt", key="loss")(9.0) == 3.0


def test_missing_file_is_its_own_error(config_dir):
    with pytest.raises(ConfigError, match=r"model.factory: file .*nope.py does not exist"):
        load_callable(f"{config_dir / 'nope.py'}:build", key="model.factory")


def test_missing_module_is_its_own_error():
    with pytest.raises(ConfigError, match="cannot import module 'no_such_package.models'"):
        load_callable("no_such_package.models:build", key="model.factory")


def test_missing_attribute_lists_callables(config_dir):
    with pytest.raises(ConfigError) as caught:
        load_callable(f"{config_dir / 'models.py'}:tiny_mpl", key="model.factory")
    message = str(caught.value)
    assert "has no callable named 'tiny_mpl'" in message
    assert "tiny_mlp" in message
    assert "slow_mlp" in message


def test_import_error_in_user_module_shows_user_frame(config_dir):
    broken = config_dir / "broken.py"
    broken.write_text("import math\n\ndef helper():\n    return 1 / 0\n\nhelper()\n")
    with pytest.raises(UserCodeError) as caught:
        load_callable(f"{broken}:helper", key="model.factory")
    assert "ZeroDivisionError" in str(caught.value)
    assert "broken.py" in caught.value.user_traceback
    assert "lrrt_cli" not in caught.value.user_traceback
