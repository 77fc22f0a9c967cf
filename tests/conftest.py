import subprocess
import sys

import pytest


@pytest.fixture
def cli():
    """Run the coreplan CLI in a subprocess: (exit status, stdout, stderr)."""
    def run(*args: str):
        proc = subprocess.run([sys.executable, "-m", "coreplan.cli", *args], capture_output=True,
                              text=True, timeout=120)
        return proc.returncode, proc.stdout, proc.stderr
    return run
