"""`benchmark_serving` and `keras-longformer serve-bench` on a tiny exported backbone.

The backbone is exported once per module (tf2onnx takes seconds). The
inputs the benchmark makes are run through `PreparedRun` and compared with
Keras directly; the CUDA IO-binding path is checked with a recording
session here (no GPU on CI), and on a real GPU where one is present.
"""

import json
import os
import re

import keras
import numpy as np
import onnxruntime
import pytest

import keras_longformer.export as export
from keras_longformer import cli
from keras_longformer.export import benchmark_serving
from keras_longformer.export import export_onnx
from keras_longformer.export import onnx_session
from keras_longformer.export import write_triton_repository
from keras_longformer.export import serve_bench as serve_bench_lib
from keras_longformer.models import LongformerBackbone
from keras_longformer.timing import time_calls
from helpers import requires_gpu

VOCABULARY, MAX_LENGTH, HIDDEN = 50, 32, 8
TOLERANCE = 1e-4  # float32, max abs error against Keras
# Asked of the session module, not of the code under test.


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = LongformerBackbone(
        vocabulary_size=VOCABULARY, num_layers=1, num_heads=2, hidden_dim=HIDDEN,
        intermediate_dim=16, window=2, max_sequence_length=MAX_LENGTH,
    )
    path = tmp_path_factory.mktemp("serve") / "tiny.onnx"
    # The exporter's own tests verify exports; here the outputs are compared below.
    export_onnx(model, path, verify=False)
    return model, path


def test_command_reports_every_grid_point_of_every_file(exported, tmp_path, capsys):
    _, path = exported
    # The same model served from a Triton repository: a second file, side by side.
    copy = os.path.join(write_triton_repository(path, tmp_path / "repo"), "1", "model.onnx")
    out_json = tmp_path / "serve.json"
    status = cli.main(
        ["--verbose", "serve-bench", str(path), copy, "--batch-sizes", "1,2", "--lengths", "5,17",
         "--repeats", "2", "--provider", "cpu", "--json", str(out_json)]
    )
    out, err = capsys.readouterr()
    assert status == 0, out + err
    report = json.loads(out_json.read_text())
    rows = report["rows"]
    grid = {(model, b, n) for model in ("tiny.onnx", "model.onnx") for b in (1, 2) for n in (5, 17)}
    assert {(r["model"], r["batch_size"], r["length"]) for r in rows} == grid
    assert len(rows) == len(grid)
    for row in rows:
        assert row["provider"] == "CPUExecutionProvider" and row["repeats"] == 2
        assert 0 < row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"]
        tokens = row["batch_size"] * row["length"]
        assert row["tokens_per_second"] == pytest.approx(tokens / (row["p50_ms"] / 1e3), rel=1e-9)
    assert report["provider_requested"] == "cpu"
    assert report["onnxruntime"] == onnxruntime.__version__
    assert {r["path"] for r in rows} == {str(path), copy}
    table = [line.split() for line in out.splitlines()]
    for model, b, n in grid:  # every point of every file is in the printed table
        assert any(line[:3] == [str(b), str(n), model] for line in table), out


def test_command_checks_the_json_directory_before_any_work(exported, tmp_path, capsys):
    _, path = exported
    missing = tmp_path / "missing" / "out.json"
    status = cli.main(["--verbose", "serve-bench", str(path), "--lengths", "5", "--json", str(missing)])
    out, err = capsys.readouterr()
    assert status == 1 and not out
    errors = err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("keras-longformer: error: --json")
    assert str(tmp_path / "missing") in errors[0]


def test_lengths_past_the_maximum_are_refused_before_any_session(exported, monkeypatch):
    _, path = exported

    def no_session(*args, **kwargs):
        raise AssertionError("a session was created before the lengths were checked")

    monkeypatch.setattr(export, "onnx_session", no_session)
    with pytest.raises(ValueError, match=rf"max_sequence_length {MAX_LENGTH}.*Received: lengths=\[8, 33\]"):
        benchmark_serving(path, lengths=[8, 33], batch_sizes=[1], repeats=1, provider="cpu")


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"batch_sizes": [0]}, "Received: batch_sizes=[0]"),
        ({"lengths": []}, "Received: lengths=[]"),
        ({"lengths": [4.5]}, "Received: lengths=[4.5]"),
        ({"repeats": 0}, "Received: repeats=0"),
        ({"provider": "tpu"}, "Received: provider='tpu'"),
        ({"onnx_paths": []}, "Received: onnx_paths=[]"),
    ],
)
def test_bad_arguments_are_named(exported, arguments, message):
    _, path = exported
    arguments = {"onnx_paths": [path], **arguments}
    with pytest.raises(ValueError, match=re.escape(message)):
        benchmark_serving(**arguments)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        benchmark_serving([tmp_path / "missing.onnx"], provider="cpu")


def test_benchmark_inputs_are_valid_and_outputs_match_keras(exported):
    model, path = exported
    feeds = serve_bench_lib.make_feeds(path, 3, 17, rng=np.random.default_rng(0))
    session = onnx_session(path, provider="cpu")
    for spec in session.get_inputs():
        assert feeds[spec.name].shape == (3, 17)
        assert spec.type == f"tensor({feeds[spec.name].dtype.name})"
    ids, padding = feeds["token_ids"], feeds["padding_mask"].astype(bool)
    assert ids.min() >= 0 and ids.max() < VOCABULARY
    assert padding.sum(axis=1).tolist() == [17, 16, 9]  # rows of different real lengths
    assert feeds["global_mask"][:, 0].all()

    run = serve_bench_lib.PreparedRun(session, feeds)
    run()
    actual = run.outputs()
    expected = model(feeds, training=False)
    for name in ("sequence_output", "pooled_output"):
        error = np.max(np.abs(actual[name] - keras.ops.convert_to_numpy(expected[name])))
        assert error <= TOLERANCE, (name, error)


class RecordingBinding:
    def __init__(self):
        self.inputs, self.outputs = {}, []

    def bind_ortvalue_input(self, name, value):
        self.inputs[name] = value

    def bind_output(self, name, device_type, device_id):
        self.outputs.append((name, device_type, device_id))

    def copy_outputs_to_cpu(self):
        return [np.zeros(1, np.float32) for _ in self.outputs]


class RecordingCudaSession:
    """What PreparedRun asks of a CUDA session, recorded."""

    def __init__(self):
        self.bindings, self.runs = [], 0

    def get_outputs(self):
        return [type("Output", (), {"name": name}) for name in ("sequence_output", "pooled_output")]

    def get_providers(self):
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]

    def get_provider_options(self):
        return {"CUDAExecutionProvider": {"device_id": "1"}}

    def io_binding(self):
        self.bindings.append(RecordingBinding())
        return self.bindings[-1]

    def run_with_iobinding(self, binding):
        assert binding is self.bindings[-1]
        self.runs += 1


def test_cuda_inputs_are_copied_to_the_device_once_outside_the_timed_calls(monkeypatch):
    copies = []

    def ortvalue_from_numpy(array, device_type, device_id):
        copies.append((array.shape, device_type, device_id))
        return ("device", len(copies))

    monkeypatch.setattr(onnxruntime.OrtValue, "ortvalue_from_numpy", ortvalue_from_numpy)
    session = RecordingCudaSession()
    feeds = {"token_ids": np.ones((2, 5), np.int32), "padding_mask": np.ones((2, 5), np.int32)}
    run = serve_bench_lib.PreparedRun(session, feeds)
    assert copies == [((2, 5), "cuda", 1)] * 2
    time_calls(run, repeats=4, warmup=1)
    assert len(copies) == 2, "inputs were copied again inside the timed loop"
    assert session.runs == 5 and len(session.bindings) == 1
    binding = session.bindings[0]
    assert binding.inputs == {"token_ids": ("device", 1), "padding_mask": ("device", 2)}
    assert binding.outputs == [("sequence_output", "cuda", 1), ("pooled_output", "cuda", 1)]
    assert set(run.outputs()) == {"sequence_output", "pooled_output"}


@requires_gpu
def test_cuda_io_binding_matches_cpu(exported):
    """On a GPU machine a CUDA provider that does not come up fails this test."""
    _, path = exported
    session = onnx_session(path, provider="cuda", cuda_options={"use_tf32": 0})
    feeds = serve_bench_lib.make_feeds(path, 2, 17, rng=np.random.default_rng(0))
    run = serve_bench_lib.PreparedRun(session, feeds)
    run()
    actual = run.outputs()
    expected = onnx_session(path, provider="cpu").run(list(actual), feeds)
    for (name, value), reference in zip(actual.items(), expected):
        assert np.max(np.abs(value - reference)) <= TOLERANCE, name
    rows = benchmark_serving(path, batch_sizes=[1], lengths=[17], repeats=2, provider="cuda")
    assert rows[0].provider == "CUDAExecutionProvider"
