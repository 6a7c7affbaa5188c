"""The benchmark's report shape and the README's first command, at small size."""

import os
import subprocess
import sys

from keras_longformer.bench import format_rows, run_benchmark

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_benchmark_reports_every_peer_as_ratio_to_ours():
    rows = run_benchmark(lengths=(64,), hidden=32, heads=2, window=16, repeats=1)
    timed = {row["peer"]: row for row in rows if "seconds" in row}
    assert timed["keras_longformer"]["ratio"] == 1.0
    assert timed["keras_mha_sliding"]["seconds"] > 0
    assert timed["hf_torch"]["seconds"] > 0
    assert "time / ours" in format_rows(rows)


def test_benchmark_skips_hugging_face_off_its_block_multiple():
    rows = run_benchmark(lengths=(40,), hidden=16, heads=2, window=16, repeats=1, peers=("keras_longformer", "hf_torch"))
    skipped = [row for row in rows if "skipped" in row]
    assert [row["peer"] for row in skipped] == ["hf_torch"]
    assert "multiple of 32" in skipped[0]["skipped"]


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
