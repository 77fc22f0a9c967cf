import subprocess
import sys

import pytest


@pytest.fixture
def cli(tmp_path):
    """Run the coreplan CLI in a subprocess: (exit status, stdout, stderr). Its cache (the
    profiles `--device local` finds) is the test's own folder, never the user's."""
    import os

    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}

    def run(*args: str):
        proc = subprocess.run([sys.executable, "-m", "coreplan.cli", *args], capture_output=True,
                              text=True, timeout=120, env=env)
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
