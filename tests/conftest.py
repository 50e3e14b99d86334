import subprocess
import sys

import pytest


@pytest.fixture
def run_cli():
    """Run ``latentatlas ARGS…`` in a fresh interpreter, as a user would; returns CompletedProcess."""

    def run(*args, cwd=None, timeout=600):
        return subprocess.run([sys.executable, "-m", "latentatlas", *map(str, args)], capture_output=True,
                              text=True, cwd=cwd, timeout=timeout)

    return run
