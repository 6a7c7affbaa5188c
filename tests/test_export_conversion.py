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


def test_weights_are_written_into_the_graph_once_not_once_per_optimizer_pass(monkeypatch):
    """tf2onnx rewrote every node's protobuf after each optimizer pass, and the
    protobuf runtime kept the replaced copies: ~55 copies of every weight alive
    (12 GiB converting a one-layer model with a 50,265-token embedding)."""
    import numpy as np
    import tensorflow as tf
    from onnx.reference import ReferenceEvaluator
    from tf2onnx.graph import Node

    rewrites = []
    update_proto = Node.update_proto

    def counting(self, *args, **kwargs):
        if self.is_const():
            rewrites.append(self.name)
        return update_proto(self, *args, **kwargs)

    monkeypatch.setattr(Node, "update_proto", counting)
    weight = tf.Variable(np.arange(64 * 8, dtype="float32").reshape(64, 8) / 100)

    def make_function():
        @tf.function
        def project(x):
            return {"y": tf.nn.relu(tf.matmul(x, weight)) + 1.0}

        return project

    proto = conversion.convert_function(make_function, [tf.TensorSpec((None, 64), tf.float32, name="x")], opset=17)
    # Once when tf2onnx builds the graph, once when it writes the model.
    assert rewrites and max(rewrites.count(name) for name in set(rewrites)) == 2
    x = np.random.default_rng(0).standard_normal((3, 64)).astype("float32")
    (y,) = ReferenceEvaluator(proto).run(None, {"x": x})
    np.testing.assert_allclose(y, np.maximum(x @ weight.numpy(), 0) + 1, atol=1e-5)
