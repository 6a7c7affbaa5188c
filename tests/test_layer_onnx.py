"""A Keras model holding the layer, exported to ONNX once, served by onnxruntime."""

import numpy as np
import onnxruntime
import pytest

from test_longformer_self_attention import build_model

WINDOW = 8
LENGTHS = [1, WINDOW - 1, WINDOW + 1, 3 * WINDOW + 5, 1500]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = build_model(window=WINDOW, dilation=(1, 3))
    rng = np.random.default_rng(0)
    model(inputs(rng, 2, 20, "first"))  # Keras exports only called models.
    path = str(tmp_path_factory.mktemp("onnx") / "layer.onnx")
    model.export(path, format="onnx", verbose=False)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return model, session


def inputs(rng, batch, length, globals_):
    padding = np.ones((batch, length), bool)
    padding[-1, max(1, length - length // 3) :] = False
    global_mask = np.zeros((batch, length), bool)
    if globals_ == "first":
        global_mask[:, 0] = True
    elif globals_ == "many":
        global_mask[:, rng.choice(length, size=min(length, 2 * WINDOW + 3), replace=False)] = True
    return dict(
        token_ids=rng.integers(0, 50, (batch, length)).astype("int32"),
        padding_mask=padding,
        global_mask=global_mask,
    )


@pytest.mark.parametrize("globals_", ["none", "first", "many"])
@pytest.mark.parametrize("length", LENGTHS)
def test_onnxruntime_matches_keras(exported, length, globals_):
    model, session = exported
    feeds = inputs(np.random.default_rng(length), 3, length, globals_)
    expected = np.asarray(model(feeds))
    (actual,) = session.run(None, feeds)
    assert actual.shape == expected.shape
    assert np.max(np.abs(actual - expected)) <= 1e-5
