"""Gradient checkpointing per encoder layer: the same training, less memory.

`gradient_checkpointing=True` (saved in the config) and `keras.RematScope`
around construction train to the same losses and weights as a plain
backbone, dropout on. Marked `backends`: also under JAX and torch. Memory
and time are measured by `keras-longformer bench`, not asserted here.
"""

import keras
import numpy as np
import pytest

from keras_longformer import models

pytestmark = pytest.mark.backends

KWARGS = dict(
    vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
    window=[2, 3], dilation=[1, [1, 2]], max_sequence_length=64, dropout=0.2, attention_dropout=0.2,
)


def train(mode, steps=3):
    keras.utils.set_random_seed(0)
    if mode == "scope":
        with keras.RematScope(mode="full"):
            backbone = models.LongformerBackbone(**KWARGS)
    else:
        backbone = models.LongformerBackbone(**KWARGS, gradient_checkpointing=mode == "argument")
    model = models.LongformerTokenClassifier(backbone, num_classes=3, dropout=0.0)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(0)
    ids = rng.integers(3, 50, (4, 40)).astype("int32")
    padding = np.ones((4, 40), "int32")
    padding[1, -9:] = 0
    ids[padding == 0] = 1
    glob = np.zeros((4, 40), "int32")
    glob[:, 0] = 1
    glob[2, 20:23] = 1
    features = {"token_ids": ids, "padding_mask": padding, "global_mask": glob}
    history = model.fit(features, rng.integers(0, 3, (4, 40)), epochs=steps, batch_size=4, shuffle=False, verbose=0)
    weights = np.concatenate([np.ravel(keras.ops.convert_to_numpy(w)) for w in model.weights])
    return np.array(history.history["loss"]), weights, model


@pytest.fixture(scope="module")
def plain():
    return train("none")


@pytest.mark.parametrize("mode", ["argument", "scope"])
def test_checkpointed_training_equals_plain_training(plain, mode):
    losses, weights, _ = train(mode)
    assert losses[-1] < losses[0]  # it trains
    assert np.max(np.abs(losses - plain[0])) <= 1e-5
    assert np.max(np.abs(weights - plain[1])) <= 1e-5


def test_the_argument_is_saved_and_inference_is_unchanged(plain, tmp_path):
    _, _, model = train("argument", steps=1)
    assert model.backbone.get_config()["gradient_checkpointing"] is True
    assert all(layer.gradient_checkpointing for layer in model.backbone.encoder_layers)
    path = str(tmp_path / "checkpointed.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.backbone.gradient_checkpointing is True
    rng = np.random.default_rng(1)
    features = {
        "token_ids": rng.integers(3, 50, (2, 30)).astype("int32"),
        "padding_mask": np.ones((2, 30), "int32"),
        "global_mask": np.zeros((2, 30), "int32"),
    }
    plain_backbone = models.LongformerBackbone(**KWARGS)
    plain_backbone.set_weights(model.backbone.get_weights())
    expected = keras.ops.convert_to_numpy(plain_backbone(features)["sequence_output"])
    actual = keras.ops.convert_to_numpy(loaded.backbone(features)["sequence_output"])
    assert np.max(np.abs(actual - expected)) <= 1e-6


def test_bad_argument_names_itself():
    with pytest.raises(ValueError, match="Received: gradient_checkpointing='yes'"):
        models.LongformerBackbone(**KWARGS, gradient_checkpointing="yes")
