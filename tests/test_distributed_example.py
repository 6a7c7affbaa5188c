"""examples/distributed_training.py trains data-parallel on two CPU devices.

A file of its own (not in tests/test_distributed.py), so that pytest-xdist
runs it beside the data-parallel equality checks.
"""

import os
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_distributed_example_runs_on_two_cpu_devices(backend, tmp_path):
    result = subprocess.run(
        [
            sys.executable, os.path.join(EXAMPLES, "distributed_training.py"),
            "--backend", backend, "--cpu-devices", "2", "--quick", "--skip-baseline",
            "--output", str(tmp_path / "model.keras"),
        ],
        capture_output=True, text=True, timeout=1200,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{backend}: data-parallel over 2 devices" in result.stdout
    assert "reloaded predictions identical: True" in result.stdout
    accuracy = float(result.stdout.split("with global attention:")[1].split()[0])
    assert 0.0 <= accuracy <= 1.0
