"""examples/distributed_training.py trains data-parallel on two CPU devices.

A file of its own (not in tests/test_distributed.py), so that pytest-xdist
runs it beside the data-parallel equality checks.
"""

import os
import subprocess
import sys

import pytest
from helpers import EXAMPLES

# tests/test_claims.py's setting: 256-token documents, two classes, markers
# 150+ tokens from <s>, one layer of window 8 (so only global attention reaches them).
LEARNABLE = ["--length", "256", "--classes", "2", "--markers", "16", "--train-size", "256", "--test-size", "128",
             "--epochs", "3", "--batch-size", "8", "--layers", "1", "--window", "8", "--hidden", "32", "--seed", "0"]


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_distributed_example_runs_on_two_cpu_devices(backend, tmp_path):
    result = subprocess.run(
        [
            sys.executable, os.path.join(EXAMPLES, "distributed_training.py"),
            "--backend", backend, "--cpu-devices", "2", "--skip-baseline", *LEARNABLE,
            "--output", str(tmp_path / "model.keras"),
        ],
        capture_output=True, text=True, timeout=1200,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{backend}: data-parallel over 2 devices" in result.stdout
    assert "reloaded predictions identical: True" in result.stdout
    accuracy = float(result.stdout.split("with global attention:")[1].split()[0])
    # Single-device, this setting reaches >= 0.95 (tests/test_claims.py); chance is 0.5.
    assert accuracy >= 0.9, result.stdout[-2000:]
