"""The README's first command, at small size (the benchmark: tests/test_bench.py)."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quickstart_trains_exports_and_verifies(tmp_path):
    output = tmp_path / "quickstart.onnx"
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "quickstart.py"),
         "--length", "256", "--examples", "32", "--epochs", "1", "--output", str(output)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Held-out accuracy" in result.stdout
    assert "Exported and verified" in result.stdout
    assert output.exists()
