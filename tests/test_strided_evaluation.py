"""Long evaluation as the paper did it: every token scored once, with up to
`sequence_length` tokens of context, checked against plain forward passes."""

import math

import keras
import numpy as np
import pytest

from keras_longformer import models
from keras_longformer.models.strided_evaluation import scored_windows
from keras_longformer.models.strided_evaluation import strided_bits_per_token

VOCAB = 30


@pytest.fixture(scope="module")
def causal_lm():
    keras.utils.set_random_seed(0)
    backbone = models.LongformerBackbone(
        vocabulary_size=VOCAB, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
        window=[3, 5], dilation=[1, [1, 2]], causal=True, max_sequence_length=32,
        dropout=0.0, attention_dropout=0.0,
    )
    return models.LongformerCausalLM(backbone)


def text(length, seed=0):
    return np.random.default_rng(seed).integers(3, VOCAB, length)


def brute_force_bits(lm, ids, sequence_length, stride):
    """One plain forward pass per token, on exactly the context its window gives it."""
    total = 0.0
    for t in range(1, len(ids)):
        if t < sequence_length:
            start = 0
        else:
            steps = math.ceil((t + 1 - sequence_length) / stride)
            start = min(sequence_length + steps * stride, len(ids)) - sequence_length
        context = ids[None, start:t].astype("int32")
        logits = lm({"token_ids": context, "padding_mask": np.ones_like(context),
                     "global_mask": np.zeros_like(context)})
        log_probs = keras.ops.convert_to_numpy(keras.ops.log_softmax(logits[0, -1]))
        total -= float(log_probs[ids[t]])
    return total / (len(ids) - 1) / math.log(2)


@pytest.mark.parametrize("length, sequence_length, stride", [(40, 16, 5), (33, 16, 15), (16, 16, 4), (29, 12, 1)])
def test_equals_a_plain_forward_pass_per_token(causal_lm, length, sequence_length, stride):
    ids = text(length)
    bits, count = strided_bits_per_token(causal_lm, ids, sequence_length, stride, batch_size=2)
    assert count == length - 1
    assert abs(bits - brute_force_bits(causal_lm, ids, sequence_length, stride)) <= 1e-5


def test_every_token_is_scored_once_with_enough_context():
    for length, sequence_length, stride in [(32256 * 2 + 7, 32256, 512), (100, 10, 3)]:
        windows = scored_windows(length, sequence_length, stride)
        scored = np.concatenate([np.arange(first, end) for _, end, first in windows])
        np.testing.assert_array_equal(scored, np.arange(1, length))
        for start, end, first in windows[1:]:
            assert end - start == sequence_length and first - start >= sequence_length - stride


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(sequence_length=8, stride=9), "stride=9, sequence_length=8"),
        (dict(sequence_length=8, stride=8), "stride=8, sequence_length=8"),
        (dict(sequence_length=64, stride=8), "20 tokens, shorter than one window"),
        (dict(sequence_length=8, stride=0), "Received: stride=0"),
    ],
)
def test_bad_input_is_a_clear_error(causal_lm, kwargs, message):
    with pytest.raises(ValueError, match=message):
        strided_bits_per_token(causal_lm, text(20), **kwargs)


def test_any_model_returning_logits_scores_the_same(causal_lm):
    # A plain functional model of the same network: no backbone/decoder to
    # split, so its full logits are read.
    plain = keras.Model(causal_lm.input, causal_lm.output)
    assert not hasattr(plain, "decoder")
    ids = text(40)
    bits, _ = strided_bits_per_token(plain, ids, 16, 5, batch_size=2)
    assert abs(bits - brute_force_bits(causal_lm, ids, 16, 5)) <= 1e-5
