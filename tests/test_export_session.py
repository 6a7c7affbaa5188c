"""`onnx_session`: the provider it really got, one line when it falls back,
onnxruntime's own warnings kept on CUDA sessions, the global log level untouched.

Whether this machine can run CUDA is decided here by an independent probe
(an NVIDIA device node and a CUDA build of onnxruntime), never by asking
the function under test; the CUDA branches are also run against a stand-in
onnxruntime so that they are tested on every machine.
"""

import logging
import os
import types

import numpy as np
import onnxruntime
import pytest

import export_fixtures as fx
from keras_longformer.export import ProviderUnavailableError
from keras_longformer.export import export_onnx
from keras_longformer.export import onnx_session
from keras_longformer.export import session as session_lib
from keras_longformer.export.dtypes import input_specs
from keras_longformer.export.dtypes import numpy_dtype

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def machine_has_cuda():
    return os.path.exists("/dev/nvidiactl") and CUDA in onnxruntime.get_available_providers()


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory):
    monkeypatch = pytest.MonkeyPatch()
    try:
        model = fx.reuse_graph(monkeypatch)
        path = tmp_path_factory.mktemp("session") / "small.onnx"
        export_onnx(model, path, verify=False)
    finally:
        monkeypatch.undo()
    return path


def test_cpu_session_and_bad_arguments(onnx_path, tmp_path):
    session = onnx_session(onnx_path, provider="cpu")
    assert session.get_providers() == [CPU]
    feeds = fx.random_inputs(np.random.default_rng(0), 9)
    model, _ = fx.converted()
    expected = fx.keras_outputs(model, feeds)
    actual = fx.session_outputs(session, feeds)
    assert fx.max_abs_error(expected["sequence_output"], actual["sequence_output"]) <= 1e-5
    with pytest.raises(ValueError, match="provider='tpu'"):
        onnx_session(onnx_path, provider="tpu")
    with pytest.raises(FileNotFoundError, match="absent.onnx"):
        onnx_session(tmp_path / "absent.onnx")


def test_auto_on_this_machine(onnx_path, caplog):
    with caplog.at_level(logging.WARNING, logger="keras_longformer.export"):
        session = onnx_session(onnx_path)
    messages = [record.getMessage() for record in caplog.records]
    if machine_has_cuda():
        assert session.get_providers()[0] == CUDA
        assert messages == []
    else:
        assert session.get_providers() == [CPU]
        assert len(messages) == 1 and messages[0].startswith("onnxruntime runs on CPU: ")
        assert "\n" not in messages[0]


def test_cuda_on_this_machine(onnx_path):
    if machine_has_cuda():
        assert onnx_session(onnx_path, provider="cuda").get_providers()[0] == CUDA
    else:
        with pytest.raises(ProviderUnavailableError, match="CUDA is not available: "):
            onnx_session(onnx_path, provider="cuda")


class StandInOnnxruntime(types.SimpleNamespace):
    """onnxruntime with a CUDA provider that behaves as told: records the
    options of every session and every change of the global log level."""

    def __init__(self, cuda_outcome):
        super().__init__(
            __version__=onnxruntime.__version__,
            SessionOptions=onnxruntime.SessionOptions,
            GraphOptimizationLevel=onnxruntime.GraphOptimizationLevel,
        )
        self.cuda_outcome = cuda_outcome  # "cuda", "cpu only" or "error"
        self.sessions = []
        self.global_levels = []

    def get_available_providers(self):
        return [CUDA, CPU]

    def set_default_logger_severity(self, level):
        self.global_levels.append(level)

    def InferenceSession(self, path, sess_options=None, providers=None):  # noqa: N802
        names = [p[0] if isinstance(p, tuple) else p for p in providers]
        self.sessions.append((names, sess_options.log_severity_level))
        if names[0] == CUDA and self.cuda_outcome == "error":
            raise RuntimeError("CUDA failure 100: no CUDA-capable device is detected\nmore")
        got = names if names[0] != CUDA or self.cuda_outcome == "cuda" else [CPU]
        return types.SimpleNamespace(get_providers=lambda: got)


@pytest.fixture
def stand_in(monkeypatch):
    def install(cuda_outcome):
        fake = StandInOnnxruntime(cuda_outcome)
        monkeypatch.setattr(session_lib, "_ort", lambda: fake)
        monkeypatch.setattr(session_lib, "cuda_unavailable_reason", lambda: None)
        return fake

    return install


def test_cuda_session_keeps_warnings_and_the_global_log_level(stand_in, onnx_path, caplog):
    fake = stand_in("cuda")
    with caplog.at_level(logging.WARNING, logger="keras_longformer.export"):
        session = onnx_session(onnx_path, cuda_options={"device_id": 0})
    assert session.get_providers()[0] == CUDA
    ((providers, level),) = fake.sessions
    assert providers == [CUDA, CPU]
    assert level <= 2  # warnings shown: which nodes onnxruntime placed on the CPU
    assert fake.global_levels == []
    assert caplog.records == []


@pytest.mark.parametrize("outcome", ["error", "cpu only"])
def test_cuda_failures_fall_back_in_one_line(stand_in, onnx_path, caplog, outcome):
    fake = stand_in(outcome)
    with caplog.at_level(logging.WARNING, logger="keras_longformer.export"):
        session = onnx_session(onnx_path)
    assert session.get_providers() == [CPU]
    (message,) = [record.getMessage() for record in caplog.records]
    assert "\n" not in message
    expected = "no CUDA-capable device" if outcome == "error" else "did not create the CUDA"
    assert expected in message
    assert fake.global_levels == []
    with pytest.raises(ProviderUnavailableError, match=expected):
        onnx_session(onnx_path, provider="cuda")


def test_one_type_map(onnx_path):
    session = onnx_session(onnx_path, provider="cpu")
    specs = input_specs(session)
    assert specs == {
        "token_ids": ((None, None), "int32"),
        "padding_mask": ((None, None), "bool"),
        "global_mask": ((None, None), "bool"),
    }
    assert numpy_dtype("tensor(float)") == "float32"
    assert numpy_dtype("tensor(float16)") == "float16"
    assert numpy_dtype("tensor(int64)") == "int64"
    with pytest.raises(ValueError, match=r"Received: ort_type='seq\(tensor\(float\)\)'"):
        numpy_dtype("seq(tensor(float))")
