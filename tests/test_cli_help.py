"""The command line's help and entry points start without importing torch."""

import subprocess
import sys

import pytest

CHECK = """
import sys
from lrrt_cli.cli import app
try:
    app({args!r}, prog_name="lrrt")
except SystemExit as exit:
    assert exit.code == 0, exit.code
assert "torch" not in sys.modules, "torch was imported"
print("ok")
"""


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["check", "--help"], ["plot", "--help"],
                                  ["suggest", "--help"], ["--version"]])
def test_help_does_not_import_torch(args):
    completed = subprocess.run([sys.executable, "-c", CHECK.format(args=args)], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().endswith("ok")


def test_module_entry_point_help():
    completed = subprocess.run([sys.executable, "-m", "lrrt_cli", "--help"], capture_output=True, text=True)
    assert completed.returncode == 0
    for command in ("run", "check", "plot", "suggest"):
        assert command in completed.stdout


def test_version_prints_package_version():
    from lrrt_cli import __version__

    completed = subprocess.run([sys.executable, "-m", "lrrt_cli", "--version"], capture_output=True, text=True)
    assert completed.stdout.strip() == f"lrrt {__version__}"
