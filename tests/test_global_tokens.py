"""`max_global_tokens`: a static bound on JAX, no bound elsewhere, never a truncation."""

import keras
import numpy as np
import pytest

from keras_longformer import models
from keras_longformer.layers import LongformerSelfAttention
from keras_longformer.ops import longformer_attention
from reference import longformer_attention_reference
import helpers

BACKEND = keras.backend.backend()


def compiled(fn):
    """`fn` as the backend compiles a training step."""
    if BACKEND == "jax":
        import jax

        return jax.jit(fn)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(fn)
    return fn


def inputs(length=12, seed=0):
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal((2, length, 2, 4)).astype("float32") for _ in range(3))
    glob = np.zeros((2, length), bool)
    glob[0, 0] = True
    glob[1, [1, 4, 5, 9]] = True  # rows with 1 and 4 global tokens
    return q, k, v, glob


@pytest.mark.backends
def test_rows_with_different_global_counts_in_a_compiled_call():
    q, k, v, glob = inputs()
    run = compiled(
        lambda q, k, v, g: longformer_attention(
            q, k, v, window=2, dilation=[1, 2], global_mask=g, max_global_tokens=6
        )
    )
    expected = longformer_attention_reference(q, k, v, window=2, dilation=[1, 2], global_mask=glob)
    for trial in range(2):  # the second call reuses the compiled function
        actual = keras.ops.convert_to_numpy(run(q, k, v, glob))
        assert np.max(np.abs(actual - expected)) <= 1e-5
        glob = glob[::-1].copy()
        expected = longformer_attention_reference(
            q, k, v, window=2, dilation=[1, 2], global_mask=glob
        )


@pytest.mark.backends
def test_a_row_over_the_bound_is_a_named_error_before_any_work():
    q, k, v, glob = inputs()
    with pytest.raises(ValueError, match=r"Row 1 .* 4 global tokens, more than max_global_tokens=3"):
        longformer_attention(q, k, v, window=2, global_mask=glob, max_global_tokens=3)
    layer = LongformerSelfAttention(num_heads=2, key_dim=4, window=2, max_global_tokens=3)
    with pytest.raises(ValueError, match="max_global_tokens=3"):
        layer(np.zeros((2, 12, 8), "float32"), global_mask=glob)


@pytest.mark.backends
def test_padded_global_tokens_do_not_count():
    q, k, v, glob = inputs()
    padding = np.ones_like(glob)
    padding[1, 4:] = False  # two of row 1's global tokens are padding
    out = longformer_attention(
        q, k, v, window=2, padding_mask=padding, global_mask=glob, max_global_tokens=2
    )
    expected = longformer_attention_reference(
        q, k, v, window=2, padding_mask=padding, global_mask=glob
    )
    assert np.max(np.abs(keras.ops.convert_to_numpy(out) - expected)) <= 1e-5


@pytest.mark.backends
@pytest.mark.parametrize("value", [0, -1, True, 1.5, "8"])
def test_bad_bounds_are_named(value):
    q, k, v, glob = inputs()
    with pytest.raises(ValueError, match=f"Received: max_global_tokens={value!r}"):
        longformer_attention(q, k, v, window=2, global_mask=glob, max_global_tokens=value)
    with pytest.raises(ValueError, match="max_global_tokens"):
        small_backbone(max_global_tokens=value)


def small_backbone(**overrides):
    return helpers.small_backbone(**{"vocabulary_size": 40, "window": 2, "dilation": 1,
                                     "max_sequence_length": 64, **overrides})


def features(global_counts, length=20):
    rng = np.random.default_rng(1)
    ids = rng.integers(3, 40, (len(global_counts), length))
    glob = np.zeros_like(ids)
    for row, count in enumerate(global_counts):
        glob[row, :count] = 1
    return {"token_ids": ids, "padding_mask": np.ones_like(ids), "global_mask": glob}


@pytest.mark.backends
def test_fit_and_predict_refuse_a_batch_over_the_bound_and_keep_the_model():
    classifier = models.LongformerClassifier(
        small_backbone(max_global_tokens=3), num_classes=2, dropout=0.0
    )
    classifier.compile(optimizer="sgd")
    ok = features([1, 3, 2, 1])
    labels = np.array([0, 1, 0, 1])
    classifier.fit(ok, labels, batch_size=2, epochs=1, verbose=0)
    before = classifier.predict(ok, verbose=0)
    too_many = features([1, 2, 5, 1])
    for run in (
        lambda: classifier.fit(too_many, labels, batch_size=2, epochs=1, verbose=0),
        lambda: classifier.evaluate(too_many, labels, batch_size=2, verbose=0),
        lambda: classifier.predict(too_many, batch_size=2, verbose=0),
    ):
        with pytest.raises(ValueError, match="5 global tokens, more than max_global_tokens=3"):
            run()
    np.testing.assert_array_equal(classifier.predict(ok, verbose=0), before)


@pytest.mark.backends
@pytest.mark.skipif(BACKEND != "jax", reason="only JAX's compiled steps need a static bound")
def test_a_streamed_batch_over_the_bound_stops_fit_and_keeps_earlier_steps():
    classifier = models.LongformerClassifier(
        small_backbone(max_global_tokens=3), num_classes=2, dropout=0.0
    )
    classifier.compile(optimizer=keras.optimizers.SGD(0.5))
    ok, labels = features([1, 3]), np.array([0, 1])
    before = classifier.predict(ok, verbose=0)

    def batches():
        yield ok, labels  # trains
        yield features([1, 5]), labels  # refused before its step

    with pytest.raises(ValueError, match="5 global tokens, more than max_global_tokens=3"):
        classifier.fit(batches(), epochs=1, verbose=0)
    after = classifier.predict(ok, verbose=0)  # the model still works...
    assert np.all(np.isfinite(after))
    assert np.max(np.abs(after - before)) > 1e-6  # ...with the first step's weights


@pytest.mark.backends
def test_default_bound_serves_a_question_of_64_tokens():
    classifier = models.LongformerClassifier(small_backbone(max_sequence_length=128), num_classes=2)
    x = features([65, 1], length=100)
    logits = classifier.predict(x, verbose=0)
    assert np.all(np.isfinite(logits))
    if BACKEND == "jax":
        with pytest.raises(ValueError, match="66 global tokens, more than max_global_tokens=65"):
            classifier.predict(features([66, 1], length=100), verbose=0)
    else:  # TensorFlow and torch impose no bound unless asked.
        assert np.all(np.isfinite(classifier.predict(features([90, 1], length=100), verbose=0)))


@pytest.mark.backends
@pytest.mark.skipif(BACKEND != "jax", reason="only JAX traces with a static bound")
def test_inside_a_jax_trace_an_overflowing_row_is_nan_not_truncated():
    q, k, v, glob = inputs()
    run = compiled(
        lambda q, k, v, g: longformer_attention(q, k, v, window=2, global_mask=g, max_global_tokens=3)
    )
    out = keras.ops.convert_to_numpy(run(q, k, v, glob))
    assert np.all(np.isnan(out[1]))  # 4 global tokens: over the bound
    expected = longformer_attention_reference(q, k, v, window=2, global_mask=glob)
    assert np.max(np.abs(out[0] - expected[0])) <= 1e-5  # row 0 untouched


def test_config_round_trips_the_bound():
    backbone = small_backbone(max_global_tokens=9)
    clone = models.LongformerBackbone.from_config(backbone.get_config())
    assert clone.max_global_tokens == 9
    assert clone.encoder_layers[1].self_attention.max_global_tokens == 9
