"""The model examples run end to end (tiny `--quick` versions).

Their published numbers are asserted in tests/test_claims.py.
"""

import importlib.util
import os
import subprocess
import sys

import numpy as np
from helpers import ROOT
from helpers import load_example




def run_example(name, *args, timeout=300):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_long_document_classification_quick(tmp_path):
    """The README's first command, small: train, save, reload, export, verify."""
    output = tmp_path / "classifier.keras"
    onnx_path = tmp_path / "classifier.onnx"
    # The comparison with a model without global attention (and its numbers)
    # is held by tests/test_claims.py; here the path a user runs end to end.
    stdout = run_example(
        "long_document_classification.py", "--quick", "--skip-baseline", "--output", str(output),
        "--export", str(onnx_path),
    )
    assert "with global attention:" in stdout
    assert "without global attention:" not in stdout
    assert "reloaded predictions identical: True" in stdout
    # The written files themselves, compared directly (not through the
    # exporter's own report): onnxruntime against Keras on new documents,
    # at lengths the export never traced.
    import keras
    import onnxruntime

    import keras_longformer  # noqa: F401  (registers the classes the file names)

    model = keras.models.load_model(output)
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    example = load_example("long_document_classification")
    rng = np.random.default_rng(7)
    for length in (70, 301):
        ids, padding, _ = example.make_documents(
            3, length, 4, 8, example.VOCABULARY_SIZE, rng
        )
        features = example.features(ids, padding, use_global=True)
        feeds = {
            value.name: np.asarray(features[value.name]).astype(
                "bool" if value.type == "tensor(bool)" else "int32"
            )
            for value in session.get_inputs()
        }
        (ort_logits,) = session.run(None, feeds)
        keras_logits = np.asarray(model(features))
        error = float(np.abs(ort_logits - keras_logits).max())
        print(f"length {length}: onnxruntime vs Keras max abs error {error:.2e}")
        assert error <= 1e-4


def test_long_document_classification_rejects_a_missing_directory_first(tmp_path):
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "long_document_classification.py"),
         "--export", str(tmp_path / "missing" / "model.onnx")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "--export: the directory of" in result.stderr
