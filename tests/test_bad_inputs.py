"""Inputs users really send: named errors before any work, never NaN from valid data."""

import re

import keras
import numpy as np
import pytest

from keras_longformer import models
from keras_longformer.layers import LongformerEmbeddings
from keras_longformer.layers import LongformerSelfAttention
from helpers import small_backbone

BACKEND = keras.backend.backend()



@pytest.mark.backends
@pytest.mark.parametrize("bad_id, where", [(30, (0, 2)), (-1, (1, 0)), (10**6, (1, 3))])
def test_token_ids_outside_the_vocabulary_are_named(bad_id, where):
    ids = np.full((2, 5), 4)
    ids[where] = bad_id
    layer = LongformerEmbeddings(vocabulary_size=30, hidden_dim=4, max_sequence_length=16)
    expected = f"vocabulary_size=30). Received: the id {bad_id} at position {where}"
    with pytest.raises(ValueError, match=re.escape(expected)):
        layer(ids)
    backbone = small_backbone()
    with pytest.raises(ValueError, match=f"the id {bad_id}"):
        backbone({"token_ids": ids, "padding_mask": np.ones_like(ids), "global_mask": np.zeros_like(ids)})


@pytest.mark.backends
@pytest.mark.skipif(
    BACKEND == "torch", reason="torch has no trace that hides the ids (its eager call names them)"
)
def test_an_unknown_id_inside_a_trace_is_nan_not_another_row():
    layer = LongformerEmbeddings(vocabulary_size=30, hidden_dim=4, max_sequence_length=16)
    layer.build((1, 3))
    ids = np.array([[0, 3, 31]], "int32")
    if BACKEND == "tensorflow":
        import tensorflow as tf

        # TensorFlow's CPU gather refuses by itself (its GPU gather gives a
        # zero row, which the NaN then marks).
        with pytest.raises(tf.errors.InvalidArgumentError, match="31 is not in"):
            tf.function(lambda x: layer(x))(ids)
        return
    import jax

    out = np.asarray(jax.jit(lambda x: layer(x))(ids))  # JAX clamps the lookup
    assert np.all(np.isnan(out[0, 2])) and np.all(np.isfinite(out[0, :2]))


@pytest.mark.backends
@pytest.mark.parametrize("causal", [False, True])
def test_an_all_padding_row_is_finite_in_the_backbone(causal):
    ids = np.random.default_rng(0).integers(3, 30, (2, 12))
    padding = np.ones_like(ids)
    padding[1] = 0
    ids[1] = 1  # the pad id
    glob = np.zeros_like(ids)
    glob[:, 0] = 1
    outputs = small_backbone(causal=causal)(
        {"token_ids": ids, "padding_mask": padding, "global_mask": glob}
    )
    for value in outputs.values():
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(value)))


@pytest.mark.parametrize("name", ["use_bias", "global_projections"])
@pytest.mark.parametrize("value", [1, "yes", None])
def test_layer_flags_must_be_bools(name, value):
    with pytest.raises(ValueError, match=f"Received: {name}={value!r}"):
        LongformerSelfAttention(num_heads=2, key_dim=4, window=2, **{name: value})
