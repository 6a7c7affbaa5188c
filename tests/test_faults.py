"""Killed mid-write (SIGKILL, at a random moment), `export_onnx`, `convert`,
`save_to_preset` and `write_triton_repository` leave the earlier output whole
and loadable under its name, every time; whatever is half-written stays under
a hidden staging name."""

import os
import random
import signal
import subprocess
import sys
import threading

import keras
import numpy as np
import onnxruntime
import pytest

import hf_fixtures
from helpers import TESTS
from helpers import small_backbone
from keras_longformer.export import export_onnx
from keras_longformer.models import LongformerBackbone

# Kills per kind of write: each trial starts a process (TensorFlow's start-up).
TRIALS = 2


def kill_at_random(op, target, source=None, seed=0):
    """Starts the worker, waits for its first complete write, kills it with
    SIGKILL at a random moment of a later write."""
    worker = subprocess.Popen(
        [sys.executable, os.path.join(TESTS, "fault_worker.py"), op, str(target), *([str(source)] if source else [])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=TESTS,
    )
    try:
        line = worker.stdout.readline()
        assert line.startswith("ready"), worker.stderr.read()[-2000:]
        seconds = float(line.split()[1])
        stopped = threading.Event()
        stopped.wait(random.Random(seed).uniform(0.0, 1.5 * seconds))
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=60)
        return seconds
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def visible_names(directory):
    return sorted(name for name in os.listdir(directory) if not name.startswith("."))


def run_onnx(path):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {value.name: np.ones([1 if d is None or isinstance(d, str) else d for d in value.shape], "int32")
             for value in session.get_inputs()}
    return session.run(None, feeds)


def test_a_killed_export_leaves_the_earlier_file_whole(tmp_path):
    target = tmp_path / "model.onnx"
    for trial in range(TRIALS):
        kill_at_random("export", target, seed=trial)
        assert visible_names(tmp_path) == ["model.onnx"]
        assert all(np.isfinite(output).all() for output in run_onnx(target))


def test_a_killed_convert_leaves_the_earlier_file_whole(tmp_path):
    source = tmp_path / "hf"
    hf_fixtures.save(hf_fixtures.random_hf_model("LongformerModel"), source)
    target = tmp_path / "out" / "model.keras"
    target.parent.mkdir()
    for trial in range(TRIALS):
        kill_at_random("convert", target, source, seed=10 + trial)
        assert visible_names(target.parent) == ["model.keras"]
        assert isinstance(keras.saving.load_model(target), LongformerBackbone)


def test_a_killed_save_to_preset_leaves_the_earlier_preset_whole(tmp_path):
    target = tmp_path / "preset"
    for trial in range(TRIALS):
        kill_at_random("preset", target, seed=20 + trial)
        assert visible_names(tmp_path) == ["preset"]
        assert isinstance(LongformerBackbone.from_preset(str(target)), LongformerBackbone)


def test_a_killed_write_triton_repository_leaves_the_earlier_model_whole(tmp_path):
    keras.utils.set_random_seed(0)
    source = tmp_path / "source.onnx"
    export_onnx(small_backbone(), source, verify=False)
    repository = tmp_path / "models"
    for trial in range(TRIALS):
        kill_at_random("triton", repository / "m", source, seed=30 + trial)
        assert visible_names(repository) == ["m"]
        assert visible_names(repository / "m") == ["1", "config.pbtxt"]
        assert 'name: "m"' in (repository / "m" / "config.pbtxt").read_text()
        run_onnx(repository / "m" / "1" / "model.onnx")
