"""The model examples run end to end (tiny `--quick` versions)."""

import os
import re
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
    stdout = run_example(
        "long_document_classification.py", "--quick", "--output", str(output),
        "--export", str(onnx_path),
    )
    assert "with global attention:" in stdout
    assert "without global attention:" in stdout
    assert "reloaded predictions identical: True" in stdout
    assert output.is_file()
    assert onnx_path.is_file()
    cases, ok = re.search(r"verification: (\d+) cases, (\d+) ok", stdout).groups()
    assert cases == ok


def test_long_document_classification_rejects_a_missing_directory_first(tmp_path):
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "long_document_classification.py"),
         "--export", str(tmp_path / "missing" / "model.onnx")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "--export: the directory of" in result.stderr


def generated_text(path, characters=12_000, seed=0):
    """Sentences from a tiny grammar: learnable structure, no download."""
    rng = np.random.default_rng(seed)
    subjects = ["the cat", "a dog", "my friend", "the old man", "she"]
    verbs = ["sees", "likes", "follows", "draws", "remembers"]
    objects = ["the river", "a red house", "the long road", "his book", "the moon"]
    sentences = []
    while sum(len(s) for s in sentences) < characters:
        sentences.append(
            f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}. "
        )
    path.write_text("".join(sentences).capitalize(), encoding="utf-8")
    return str(path)


def test_char_lm_quick(tmp_path):
    text_file = generated_text(tmp_path / "text.txt")
    stdout = run_example("char_lm.py", "--text-file", text_file, "--quick")
    bpc = float(re.search(r"held-out bits per character: ([0-9.]+)", stdout).group(1))
    uniform = float(re.search(r"uniform: ([0-9.]+)", stdout).group(1))
    assert np.isfinite(bpc)
    # Even 20 steps learn the character distribution.
    assert bpc < uniform, stdout
