"""tf2onnx's optimizer passes run without a copy of the graph before each,
and a conversion whose pass raises is converted again the careful way."""

import os

import onnx
import pytest
import tf2onnx

from keras_longformer.export import conversion


class FakeStructure:
    onnx_specs = {}


def fake_from_function(calls, fail_without_copies):
    def from_function(function, signature, *, opset, large_model):
        without_copies = "TF2ONNX_CATCH_ERRORS" in os.environ
        calls.append(without_copies)
        if without_copies and fail_without_copies:
            raise RuntimeError("an optimizer pass failed")
        return onnx.helper.make_model(onnx.helper.make_graph([], "g", [], [])), None

    return from_function


@pytest.mark.parametrize("fail_without_copies", [False, True])
def test_a_failing_pass_converts_again_with_copies(monkeypatch, fail_without_copies):
    monkeypatch.delenv("TF2ONNX_CATCH_ERRORS", raising=False)
    calls = []
    monkeypatch.setattr(
        tf2onnx.convert, "from_function", fake_from_function(calls, fail_without_copies)
    )
    monkeypatch.setattr(conversion, "_serving_function", lambda model, structure: None)
    proto = conversion.convert(None, FakeStructure(), opset=17, large_model=False)
    assert isinstance(proto, onnx.ModelProto)
    assert calls == ([True, False] if fail_without_copies else [True])
    assert "TF2ONNX_CATCH_ERRORS" not in os.environ


def test_the_users_own_tf2onnx_setting_stands(monkeypatch):
    monkeypatch.setenv("TF2ONNX_CATCH_ERRORS", "TRUE")
    with conversion._optimizer_passes_without_copies():
        assert os.environ["TF2ONNX_CATCH_ERRORS"] == "TRUE"
    assert os.environ["TF2ONNX_CATCH_ERRORS"] == "TRUE"
