"""TensorFlow, JAX and torch: the same numbers, and each other's `.keras` files.

Each backend runs in its own process (`tests/backend_worker.py`, or pytest
on the tests marked `backends`), since Keras picks its backend once per
process. The numbers are compared here, not by the workers.
"""

import contextlib
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import keras
from keras_longformer import models
from helpers import TESTS

BACKENDS = ["tensorflow", "jax", "torch"]
OTHER_BACKENDS = ["jax", "torch"]
VOCAB, PAD, LENGTH, BATCH = 40, 1, 30, 4


def run_under(backend, args, timeout=900):
    (result,) = run_each([(backend, args)], timeout)
    return result


def run_each(jobs, timeout=900):
    """Runs `[(backend, args), ...]` as concurrent processes (each backend
    its own), asserting that every one exits 0; returns their results."""
    with contextlib.ExitStack() as stack:
        started = []
        for backend, args in jobs:
            # Files, not pipes: a process blocked on a full pipe would never end.
            out, err = (stack.enter_context(tempfile.TemporaryFile("w+")) for _ in range(2))
            process = subprocess.Popen(
                [sys.executable, *args], stdout=out, stderr=err, text=True,
                env=dict(os.environ, KERAS_BACKEND=backend), cwd=TESTS,
            )
            stack.callback(process.kill)
            started.append((backend, args, process, out, err))
        results = []
        for backend, args, process, out, err in started:
            process.wait(timeout=timeout)
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
            assert process.returncode == 0, (
                f"{backend}: {' '.join(args)} exited {process.returncode}\n"
                f"{stdout[-3000:]}\n{stderr[-3000:]}"
            )
            results.append(subprocess.CompletedProcess(process.args, 0, stdout, stderr))
        return results


def make_data():
    rng = np.random.default_rng(0)
    ids = rng.integers(3, VOCAB, (BATCH, LENGTH))
    padding = np.ones((BATCH, LENGTH), "int32")
    padding[1, -7:] = 0
    ids[padding == 0] = PAD
    glob = np.zeros((BATCH, LENGTH), "int32")
    glob[:, 0] = 1
    glob[2, 10:13] = 1  # rows with 1 and 4 global tokens in one batch
    return {
        "token_ids": ids,
        "padding_mask": padding,
        "global_mask": glob,
        "labels": rng.integers(0, 3, (BATCH, LENGTH)),
    }


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """Every backend trains the same saved model, then loads every result."""
    directory = tmp_path_factory.mktemp("backends")
    keras.utils.set_random_seed(0)
    backbone = models.LongformerBackbone(
        vocabulary_size=VOCAB, num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=32, window=[2, 3], dilation=[1, [1, 2]],
        max_sequence_length=64, pad_token_id=PAD, dropout=0.0, attention_dropout=0.0,
    )
    # A token classifier: every position's output counts, so every weight
    # has a gradient (a sequence classifier reading only a global `<s>`
    # leaves the last layer's local projections without one, rightly).
    model = models.LongformerTokenClassifier(backbone, num_classes=3, dropout=0.0)
    model.save(str(directory / "initial.keras"))
    np.savez(str(directory / "data.npz"), **make_data())
    worker = os.path.join(TESTS, "backend_worker.py")
    # The backends side by side: each trains, then each loads every result.
    run_each([(backend, [worker, "train", str(directory)]) for backend in BACKENDS])
    run_each([(backend, [worker, "load", str(directory)]) for backend in BACKENDS])
    return directory


def results(directory, phase, backend):
    return dict(np.load(str(directory / f"{phase}_{backend}.npz")))


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_sgd_steps_give_the_same_losses_and_predictions(workdir, backend):
    reference = results(workdir, "train", "tensorflow")
    other = results(workdir, "train", backend)
    assert np.all(np.isfinite(reference["losses"]))
    # The steps really trained: the loss moved.
    assert abs(reference["losses"][-1] - reference["losses"][0]) > 1e-3
    assert np.max(np.abs(other["losses"] - reference["losses"])) <= 1e-4
    assert np.max(np.abs(other["predictions"] - reference["predictions"])) <= 1e-4


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_trainable_weight_gets_a_gradient(workdir, backend):
    trained = results(workdir, "train", backend)
    still = [str(name) for name, moved in zip(trained["names"], trained["moved"]) if not moved]
    assert len(trained["names"]) > 20
    assert still == []


@pytest.mark.parametrize("saved_by", BACKENDS)
@pytest.mark.parametrize("loaded_by", BACKENDS)
def test_keras_files_load_under_every_backend(workdir, saved_by, loaded_by):
    expected = results(workdir, "train", saved_by)["predictions"]
    loaded = results(workdir, "load", loaded_by)[saved_by]
    assert np.max(np.abs(loaded - expected)) <= 1e-5


@pytest.mark.parametrize("saved_by", BACKENDS)
@pytest.mark.parametrize("loaded_by", BACKENDS)
def test_a_loaded_file_compiles_as_its_loading_backend_chooses(workdir, saved_by, loaded_by):
    """"auto" is saved as "auto": a file trained under JAX (where it means
    XLA) loads under torch without torch.compile, and the reverse (CPU:
    "auto" is XLA on JAX only)."""
    loaded = results(workdir, "load", loaded_by)[f"{saved_by}_jit_compile"]
    assert bool(loaded) == (loaded_by == "jax")


def test_a_file_trained_under_jax_exports_from_a_jax_shell(workdir, tmp_path):
    """`keras-longformer export` runs on TensorFlow whatever KERAS_BACKEND says."""
    import onnxruntime

    onnx_path = tmp_path / "trained_jax.onnx"
    run_under(
        "jax",
        # The export's own check at one length: this test compares onnxruntime with JAX itself.
        ["-m", "keras_longformer.cli", "export", str(workdir / "trained_jax.keras"), str(onnx_path),
         "--lengths", str(LENGTH)],
    )
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    data = make_data()
    feeds = {
        value.name: np.asarray(data[value.name], "int64" if "int64" in value.type else "int32")
        for value in session.get_inputs()
    }
    (logits,) = session.run(None, feeds)
    expected = results(workdir, "train", "jax")["predictions"]
    assert np.max(np.abs(logits - expected)) <= 1e-4


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_export_onnx_in_another_backend_says_how_at_once(backend, tmp_path):
    script = (
        "import keras_longformer.export as e\n"
        "try:\n"
        f"    e.export_onnx('missing.keras', {str(tmp_path / 'x.onnx')!r})\n"
        "except e.ExportError as error:\n"
        "    print('REFUSED', error)\n"
    )
    result = run_under(backend, ["-c", script])
    assert f"this process runs Keras on '{backend}'" in result.stdout
    assert "keras-longformer export model.keras model.onnx" in result.stdout
    assert not (tmp_path / "x.onnx").exists()
