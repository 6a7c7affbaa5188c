"""The README's Python example, run as a newcomer pastes it: every line as
written, in a fresh process, then its ONNX logits held against Keras's."""

import json
import os
import re
import subprocess
import sys

from helpers import ROOT

# Appended to the snippet, not part of it: the ONNX session's logits equal the
# Keras classifier's on the same features (the export's promise).
CHECK = """
import json
expected = np.asarray(classifier.predict(features, verbose=0))
print(json.dumps({"shape": list(logits.shape), "error": float(np.max(np.abs(logits - expected)))}))
"""
TOLERANCE = 1e-4  # float32 export


def readme_python_blocks():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as file:
        return re.findall(r"```python\n(.*?)```", file.read(), flags=re.S)


def test_the_readme_example_trains_exports_and_serves_the_same_logits(tmp_path):
    blocks = readme_python_blocks()
    assert len(blocks) == 1, "the README holds one Python example; test each one added"
    result = subprocess.run(
        [sys.executable, "-c", blocks[0] + CHECK], cwd=tmp_path, capture_output=True, text=True,
        timeout=1200, env=dict(os.environ, KERAS_BACKEND="tensorflow"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])  # the CHECK's one line
    assert report["shape"] == [8, 2]
    assert report["error"] <= TOLERANCE, report
    assert (tmp_path / "classifier.onnx").is_file()
