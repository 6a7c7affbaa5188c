"""Dropout is really active in training, and really off otherwise.

For each dropout (embeddings, hidden states, attention probabilities, and
all of them through the backbone): a call with `training=True` differs
from the inference call, two inference calls are identical, and the
inference call equals the same weights with dropout 0.
"""

import keras
import numpy as np
import pytest

from keras_longformer.layers import LongformerEmbeddings
from keras_longformer.layers import LongformerEncoderLayer
from keras_longformer.layers import LongformerSelfAttention
from keras_longformer.models import LongformerBackbone

VOCAB, HIDDEN, HEADS, LENGTH, PAD = 40, 16, 2, 24, 1
RATE = 0.5


def token_ids(seed=0):
    return np.random.default_rng(seed).integers(3, VOCAB, (2, LENGTH)).astype("int32")


def hidden_states(seed=0):
    return np.random.default_rng(seed).standard_normal((2, LENGTH, HIDDEN)).astype("float32")


def global_first():
    mask = np.zeros((2, LENGTH), bool)
    mask[:, 0] = True
    return mask


def twin(layer_cls, config, rate_keys, inputs_shape):
    """The layer and a copy of it (same weights) with every dropout rate 0."""
    layer = layer_cls(**config)
    layer.build(inputs_shape)
    clean = layer_cls(**dict(config, **{key: 0.0 for key in rate_keys}))
    clean.build(inputs_shape)
    clean.set_weights(layer.get_weights())
    return layer, clean


def assert_dropout_behaves(call, clean_call, rows=None):
    """`call(training)` vs `clean_call()`; `rows`: row slices that must change."""
    inference = np.asarray(call(False))
    np.testing.assert_array_equal(inference, np.asarray(call(False)))
    np.testing.assert_array_equal(inference, np.asarray(call(None)))
    np.testing.assert_allclose(inference, np.asarray(clean_call()), atol=1e-6, rtol=0)
    training = np.asarray(call(True))
    assert np.isfinite(training).all()
    for where in rows or [slice(None)]:
        changed = np.abs(training[:, where] - inference[:, where]).max()
        assert changed > 1e-3, f"training=True left rows {where} unchanged ({changed})"
    return inference, training


def test_embedding_dropout_scales_kept_units_and_zeroes_the_rest():
    keras.utils.set_random_seed(0)
    config = dict(vocabulary_size=VOCAB, hidden_dim=HIDDEN, max_sequence_length=LENGTH,
                  pad_token_id=PAD, dropout=RATE)
    layer, clean = twin(LongformerEmbeddings, config, ["dropout"], (2, LENGTH))
    ids = token_ids()
    inference, training = assert_dropout_behaves(
        lambda training: layer(ids, training=training), lambda: clean(ids)
    )
    # Inverted dropout: each unit is 0 or its inference value / (1 - rate).
    kept = training != 0
    assert 0.3 < kept.mean() < 0.7, kept.mean()
    np.testing.assert_allclose(training[kept], inference[kept] / (1 - RATE), rtol=1e-5, atol=1e-6)


def test_hidden_dropout_of_the_encoder_layer():
    keras.utils.set_random_seed(1)
    config = dict(num_heads=HEADS, intermediate_dim=32, window=2,
                  dropout=RATE, attention_dropout=0.0)
    layer, clean = twin(LongformerEncoderLayer, config, ["dropout"], (2, LENGTH, HIDDEN))
    x, glob = hidden_states(), global_first()
    assert_dropout_behaves(
        lambda training: layer(x, global_mask=glob, training=training),
        lambda: clean(x, global_mask=glob),
    )


def test_attention_dropout_on_local_and_global_probabilities():
    keras.utils.set_random_seed(2)
    config = dict(num_heads=HEADS, key_dim=HIDDEN // HEADS, window=2, dropout=RATE, seed=3)
    layer, clean = twin(LongformerSelfAttention, config, ["dropout"], (2, LENGTH, HIDDEN))
    x, glob = hidden_states(1), global_first()
    # Row 0 is global (its probabilities span every key); rows past the
    # window of token 0 are local ones.
    assert_dropout_behaves(
        lambda training: layer(x, global_mask=glob, training=training),
        lambda: clean(x, global_mask=glob),
        rows=[slice(0, 1), slice(8, LENGTH)],
    )


@pytest.mark.parametrize("rates", [(RATE, 0.0), (0.0, RATE)], ids=["hidden", "attention"])
def test_backbone_dropout(rates):
    dropout, attention_dropout = rates
    keras.utils.set_random_seed(4)
    config = dict(vocabulary_size=VOCAB, num_layers=2, num_heads=HEADS, hidden_dim=HIDDEN,
                  intermediate_dim=32, window=2, max_sequence_length=LENGTH, pad_token_id=PAD,
                  dropout=dropout, attention_dropout=attention_dropout)
    backbone = LongformerBackbone(**config)
    clean = LongformerBackbone(**dict(config, dropout=0.0, attention_dropout=0.0))
    clean.set_weights(backbone.get_weights())
    inputs = {"token_ids": token_ids(2), "padding_mask": np.ones((2, LENGTH), bool),
              "global_mask": global_first()}
    assert_dropout_behaves(
        lambda training: backbone(inputs, training=training)["sequence_output"],
        lambda: clean(inputs)["sequence_output"],
    )
