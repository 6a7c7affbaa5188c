"""`LongformerSelfAttention`: wiring, config, saving, training and errors."""

import numpy as np
import pytest
import keras
from keras import ops

from keras_longformer.layers import LongformerSelfAttention
from reference import longformer_attention_reference

FLOAT32_ATOL = 1e-5


def project(x, dense):
    """numpy EinsumDense "abc,cde->abde" / "abcd,cde->abe"."""
    kernel = np.asarray(dense.kernel, np.float64)
    bias = 0.0 if dense.bias is None else np.asarray(dense.bias, np.float64)
    if kernel.ndim == 3 and x.ndim == 3:
        return np.einsum("btd,dnh->btnh", x, kernel) + bias
    return np.einsum("btnh,nhd->btd", x, kernel) + bias


def layer_reference(layer, x, padding_mask, global_mask):
    x = np.asarray(x, np.float64)
    q, k, v = (project(x, d) for d in (layer._query_dense, layer._key_dense, layer._value_dense))
    global_inputs = {}
    if layer.global_projections:
        global_inputs = dict(
            global_query=project(x, layer._global_query_dense),
            global_key=project(x, layer._global_key_dense),
            global_value=project(x, layer._global_value_dense),
        )
    attended = longformer_attention_reference(
        q,
        k,
        v,
        window=layer.window,
        dilation=layer.dilation,
        causal=layer.causal,
        padding_mask=padding_mask,
        global_mask=global_mask,
        **global_inputs,
    )
    return project(attended, layer._output_dense)


def example_inputs(rng, batch=2, length=23, hidden=12):
    x = rng.standard_normal((batch, length, hidden)).astype("float32")
    padding = np.ones((batch, length), bool)
    padding[-1, length - 5 :] = False
    global_mask = np.zeros((batch, length), bool)
    global_mask[:, 0] = True
    global_mask[0, length // 2] = True
    return x, padding, global_mask


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(window=2),
        dict(window=3, dilation=[1, 2, 3], causal=True),
        dict(window=1, global_projections=False, use_bias=False),
    ],
)
def test_matches_projections_plus_reference(kwargs):
    rng = np.random.default_rng(0)
    x, padding, global_mask = example_inputs(rng)
    layer = LongformerSelfAttention(
        num_heads=3, key_dim=4, bias_initializer="random_normal", **kwargs
    )
    out = layer(x, padding_mask=padding, global_mask=global_mask)
    assert out.shape == x.shape
    expected = layer_reference(layer, x, padding, global_mask)
    assert np.max(np.abs(np.asarray(out) - expected)) <= FLOAT32_ATOL


def test_global_projections_are_used_and_trained():
    layer = LongformerSelfAttention(num_heads=2, key_dim=4, window=1)
    layer.build((None, None, 8))
    names = {w.path.split("/")[-2] for w in layer.trainable_weights}
    assert {"query_global", "key_global", "value_global"} <= names
    plain = LongformerSelfAttention(2, 4, window=1, global_projections=False)
    plain.build((None, None, 8))
    assert len(plain.trainable_weights) == len(layer.trainable_weights) - 6


def test_config_round_trip():
    layer = LongformerSelfAttention(
        num_heads=4,
        key_dim=8,
        window=16,
        dilation=[1, 1, 2, 3],
        causal=True,
        dropout=0.1,
        use_bias=False,
        global_projections=False,
        kernel_initializer="he_normal",
        seed=7,
        name="attn",
    )
    config = layer.get_config()
    clone = LongformerSelfAttention.from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert restored.get_config() == config


def build_model(window=3, dilation=(1, 2), hidden=16, vocabulary=50, dropout=0.0):
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    padding_mask = keras.Input((None,), dtype="bool", name="padding_mask")
    global_mask = keras.Input((None,), dtype="bool", name="global_mask")
    x = keras.layers.Embedding(vocabulary, hidden)(token_ids)
    x = LongformerSelfAttention(
        num_heads=2, key_dim=8, window=window, dilation=list(dilation), dropout=dropout
    )(x, padding_mask=padding_mask, global_mask=global_mask)
    x = keras.layers.Dense(1, name="logits")(x)
    inputs = dict(token_ids=token_ids, padding_mask=padding_mask, global_mask=global_mask)
    return keras.Model(inputs, x)


def model_inputs(rng, batch, length, vocabulary=50):
    padding = np.ones((batch, length), bool)
    padding[-1, length * 3 // 4 :] = False
    global_mask = np.zeros((batch, length), bool)
    global_mask[:, 0] = True
    return dict(
        token_ids=rng.integers(2, vocabulary, (batch, length)).astype("int32"),
        padding_mask=padding,
        global_mask=global_mask,
    )


def test_keras_save_and_load_identity(tmp_path):
    rng = np.random.default_rng(1)
    model = build_model()
    inputs = model_inputs(rng, 3, 37)
    before = np.asarray(model(inputs))
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    after = np.asarray(restored(inputs))
    np.testing.assert_array_equal(before, after)


def train_on_the_first_token(global_first):
    """Final training loss of predicting, at every position, the first token's parity."""
    rng = np.random.default_rng(2)
    keras.utils.set_random_seed(2)
    model = build_model(window=1, dilation=(1, 1), dropout=0.1)
    inputs = model_inputs(rng, 64, 48)
    inputs["padding_mask"][:] = True
    inputs["global_mask"][:, 0] = global_first
    target = (inputs["token_ids"][:, :1] % 2).astype("float32")
    targets = np.broadcast_to(target[:, :, None], (64, 48, 1))
    model.compile(keras.optimizers.Adam(0.01), "mse")
    losses = model.fit(inputs, targets, epochs=15, batch_size=16, verbose=0).history["loss"]
    assert np.all(np.isfinite(losses))
    return losses[-1], float(np.var(target))


def test_fit_learns_a_long_range_task():
    """The target is the first token; only the global path reaches it from
    most positions (window 1): without it the layer can do little better than
    predict the mean."""
    with_global, mean_predictor = train_on_the_first_token(True)
    without_global, _ = train_on_the_first_token(False)
    # Measured (seed 2): 0.137 with, 0.237 without, the mean predictor 0.246.
    assert without_global > 0.9 * mean_predictor, (without_global, mean_predictor)
    assert with_global < 0.7 * without_global, (with_global, without_global)


def test_dropout_only_in_training():
    rng = np.random.default_rng(3)
    x, padding, global_mask = example_inputs(rng)
    layer = LongformerSelfAttention(num_heads=3, key_dim=4, window=2, dropout=0.5, seed=1)
    inference = np.asarray(layer(x, padding_mask=padding, global_mask=global_mask))
    again = np.asarray(layer(x, padding_mask=padding, global_mask=global_mask, training=False))
    trained = np.asarray(layer(x, padding_mask=padding, global_mask=global_mask, training=True))
    np.testing.assert_array_equal(inference, again)
    assert np.max(np.abs(trained - inference)) > 1e-3
    assert np.max(np.abs(inference - layer_reference(layer, x, padding, global_mask))) <= FLOAT32_ATOL


def test_mixed_precision_policy():
    rng = np.random.default_rng(4)
    x, padding, global_mask = example_inputs(rng)
    layer = LongformerSelfAttention(num_heads=3, key_dim=4, window=2, dtype="mixed_bfloat16")
    out = layer(x, padding_mask=padding, global_mask=global_mask)
    assert out.dtype == "bfloat16"
    # The float64 reference of the same (float32) weights, within bfloat16's
    # rounding of inputs, projections and outputs (8 bits of mantissa).
    expected = layer_reference(layer, x, padding, global_mask)
    error = np.max(np.abs(np.asarray(ops.cast(out, "float32")) - expected))
    assert error <= 3e-2 * max(1.0, float(np.max(np.abs(expected)))), error


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(num_heads=0, key_dim=4, window=1), "Received: num_heads=0"),
        (dict(num_heads=2, key_dim=-3, window=1), "Received: key_dim=-3"),
        (dict(num_heads=2, key_dim=4, window=-1), "Received: window=-1"),
        (dict(num_heads=2, key_dim=4, window=1, dilation=[1, 2, 3]), r"Received: dilation=\[1, 2, 3\]"),
        (dict(num_heads=2, key_dim=4, window=1, dilation=0), "Received: dilation=0"),
        (dict(num_heads=2, key_dim=4, window=1, dropout=1.5), "Received: dropout=1.5"),
        (dict(num_heads=2, key_dim=4, window=1, causal=1), "Received: causal=1"),
    ],
)
def test_bad_arguments_raise_in_init(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LongformerSelfAttention(**kwargs)


def test_bad_mask_shapes_are_named():
    layer = LongformerSelfAttention(num_heads=2, key_dim=4, window=1)
    x = np.zeros((2, 10, 8), "float32")
    with pytest.raises(ValueError, match=r"padding_mask.*Received: padding_mask.shape=\(2, 9\)"):
        layer(x, padding_mask=np.ones((2, 9), bool))
    with pytest.raises(ValueError, match=r"global_mask.*Received: global_mask.shape=\(10,\)"):
        layer(x, global_mask=np.ones((10,), bool))
    with pytest.raises(ValueError, match=r"Received: hidden_states.shape=\(10, 8\)"):
        layer(x[0])
