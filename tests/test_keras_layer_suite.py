"""Keras's own layer checks on every layer, under every backend.

`keras.src.testing.TestCase.run_layer_test` is what Keras runs on its own
layers: config round trip, serialization, symbolic and eager calls that
agree, a training step, mixed precision. It is Keras's test utility (not a
public API); these tests pin it to the installed Keras.
"""

import numpy as np
import pytest
from keras.src.testing import TestCase

from keras_longformer.layers import LongformerEmbeddings
from keras_longformer.layers import LongformerEncoderLayer
from keras_longformer.layers import LongformerSelfAttention

BATCH, LENGTH, HIDDEN = 2, 10, 8


# Keras's convention: `build(hidden_states_shape, ...)` for `call(hidden_states, ...)`.
# The suite's training check feeds a dict as one positional input, which a
# layer with several call arguments cannot take; these layers train inside
# every task model on every backend (tests/test_models.py,
# tests/test_backend_matrix.py).
# The suite fills integer tensors with uniform [0, 3) cast to int: masks
# ~2/3 non-zero (non-zero integers are true), so mixed padding and many
# global tokens. (A float mask must hold only 0 and 1, which the suite's
# random floats do not.)
ATTENTION_SHAPES = dict(
    input_shape={
        "hidden_states_shape": (BATCH, LENGTH, HIDDEN),
        "padding_mask_shape": (BATCH, LENGTH),
        "global_mask_shape": (BATCH, LENGTH),
    },
    input_dtype={
        "hidden_states_shape": "float32",
        "padding_mask_shape": "int32",
        "global_mask_shape": "int32",
    },
)


class KerasLayerSuite(TestCase):
    @pytest.mark.backends
    def test_self_attention(self):
        self.run_layer_test(
            LongformerSelfAttention,
            init_kwargs=dict(num_heads=2, key_dim=4, window=2, dilation=[1, 2], dropout=0.1, seed=1),
            **ATTENTION_SHAPES,
            run_training_check=False,
            expected_output_shape=(BATCH, LENGTH, HIDDEN),
            # query, key, value, their global copies and the output: kernel + bias each.
            expected_num_trainable_weights=14,
            expected_num_non_trainable_weights=0,
            expected_num_seed_generators=1,
            supports_masking=False,
        )

    @pytest.mark.backends
    def test_self_attention_causal_without_global_projections(self):
        self.run_layer_test(
            LongformerSelfAttention,
            init_kwargs=dict(
                num_heads=2, key_dim=4, window=3, causal=True, global_projections=False,
                use_bias=False,
            ),
            **ATTENTION_SHAPES,
            run_training_check=False,
            expected_output_shape=(BATCH, LENGTH, HIDDEN),
            expected_num_trainable_weights=4,
            supports_masking=False,
        )

    @pytest.mark.backends
    def test_encoder_layer(self):
        self.run_layer_test(
            LongformerEncoderLayer,
            init_kwargs=dict(num_heads=2, intermediate_dim=16, window=2, dilation=[2, 1], dropout=0.1),
            **ATTENTION_SHAPES,
            run_training_check=False,
            expected_output_shape=(BATCH, LENGTH, HIDDEN),
            # attention 14, two LayerNorms 4, two dense layers 4.
            expected_num_trainable_weights=22,
            supports_masking=False,
        )

    @pytest.mark.backends
    def test_embeddings(self):
        ids = np.random.default_rng(1).integers(3, 30, (BATCH, LENGTH))
        ids[1, -2:] = 1
        self.run_layer_test(
            LongformerEmbeddings,
            init_kwargs=dict(vocabulary_size=30, hidden_dim=HIDDEN, max_sequence_length=16, dropout=0.1),
            input_data=ids,
            expected_output_shape=(BATCH, LENGTH, HIDDEN),
            # token, position, token-type tables and the LayerNorm.
            expected_num_trainable_weights=5,
            supports_masking=False,
        )
