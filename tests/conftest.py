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


MINIMAL_DEVICE = ("[devices.x]\nsource = 'datasheet'\nmemory_bandwidth_bytes_per_s = 1e10\n"
                  "memory_capacity_bytes = 1e9\npeak_flops_per_s = { fp32 = 1e11 }\n")


@pytest.fixture
def device_file(tmp_path):
    """Write a device file: one minimal device [devices.x] followed by `body`; returns its path."""
    def write(body: str):
        path = tmp_path / "d.toml"
        path.write_text(MINIMAL_DEVICE + body)
        return path
    return write
