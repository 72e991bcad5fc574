"""The README's examples run as written."""

import re
import shutil
import subprocess
import sys

from conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_setup_commands():
    first_block = re.search(r"```bash\n(.*?)```", README, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands == ["make run", "make test"]


def test_python_example_runs(tmp_path):
    code = re.search(r"## From Python.*?```python\n(.*?)```", README, re.S).group(1)
    shutil.copytree(REPO_ROOT / "configs", tmp_path / "configs")
    completed = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert "cycle_max_lr" in completed.stdout
    assert (tmp_path / "runs" / "notebook" / "curve.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
