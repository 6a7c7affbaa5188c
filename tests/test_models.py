"""Embeddings, encoder layer, backbone and task models."""

import warnings

import numpy as np
import pytest
import keras
import tensorflow as tf

from keras_longformer import models
from keras_longformer.layers import LongformerEmbeddings
from keras_longformer.layers import LongformerEncoderLayer
import helpers

VOCAB, PAD, LENGTH, BATCH = 40, 1, 24, 4


def small_backbone(**overrides):
    return helpers.small_backbone(**{"vocabulary_size": VOCAB, "hidden_dim": 16, "intermediate_dim": 32,
                                     "max_sequence_length": 64, "pad_token_id": PAD, **overrides})


def task_backbone(**overrides):
    """The task models' backbone: one layer (its heads dilated 1 and 2),
    because fitting, saving and reloading a task costs its tracing, which
    grows with every layer (TensorFlow: 35 s -> 22 s per task for one layer
    less); two-layer models train in tests/test_backend_matrix.py."""
    return small_backbone(**{"num_layers": 1, "window": [3], "dilation": [[1, 2]], **overrides})


def features(length=LENGTH, batch=BATCH, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, VOCAB, (batch, length))
    padding = np.ones((batch, length), "int32")
    if batch > 1:
        padding[1, length - 5 :] = 0
    ids[padding == 0] = PAD
    glob = np.zeros((batch, length), "int32")
    glob[:, 0] = 1
    glob[-1, length // 2] = 1
    return {"token_ids": ids, "padding_mask": padding, "global_mask": glob}


def as_numpy(outputs):
    if isinstance(outputs, dict):
        return {k: np.asarray(v) for k, v in outputs.items()}
    return np.asarray(outputs)


# === Embeddings ===


def test_position_ids_match_roberta():
    layer = LongformerEmbeddings(vocabulary_size=VOCAB, hidden_dim=8, max_sequence_length=16)
    ids = np.array([[0, 5, PAD, 6, 2, PAD, PAD], [PAD, 7, 8, 9, 10, 11, 12]])
    # Hugging Face's create_position_ids_from_input_ids, in numpy.
    mask = (ids != PAD).astype(int)
    expected = np.cumsum(mask, axis=1) * mask + PAD
    np.testing.assert_array_equal(np.asarray(layer.position_ids(ids)), expected)
    assert layer(ids).shape == (2, 7, 8)
    assert layer.num_positions == 16 + PAD + 1


def test_too_long_static_is_a_clear_error():
    backbone = small_backbone()
    with pytest.raises(ValueError, match="70 tokens, more than max_sequence_length=64"):
        backbone(features(length=70))


def test_too_long_dynamic_fails_loudly():
    backbone = small_backbone()
    spec = tf.TensorSpec([None, None], tf.int32)

    @tf.function(input_signature=[spec, spec, spec])
    def run(token_ids, padding_mask, global_mask):
        return backbone(
            {"token_ids": token_ids, "padding_mask": padding_mask, "global_mask": global_mask}
        )["sequence_output"]

    ok = features(length=64, batch=1)
    assert run(*(ok[k] for k in ("token_ids", "padding_mask", "global_mask"))).shape == (1, 64, 16)
    too_long = features(length=65, batch=1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="sequence_longer_than_max_sequence_length"):
        run(*(too_long[k] for k in ("token_ids", "padding_mask", "global_mask")))


def test_embeddings_config_round_trip():
    layer = LongformerEmbeddings(
        vocabulary_size=VOCAB, hidden_dim=8, max_sequence_length=16, pad_token_id=0, dropout=0.2
    )
    clone = LongformerEmbeddings.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(vocabulary_size=0), "vocabulary_size=0"),
        (dict(pad_token_id=VOCAB), f"pad_token_id={VOCAB}"),
        (dict(dropout=1.0), "dropout=1.0"),
    ],
)
def test_embeddings_argument_errors(kwargs, match):
    args = dict(vocabulary_size=VOCAB, hidden_dim=8, max_sequence_length=16)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        LongformerEmbeddings(**args)


# === Encoder layer ===


def test_encoder_layer_shapes_config_and_gelu():
    layer = LongformerEncoderLayer(num_heads=2, intermediate_dim=12, window=3, dilation=[1, 2])
    x = keras.random.normal((2, 11, 8), seed=1)
    y = layer(x, padding_mask=np.ones((2, 11), bool), global_mask=np.eye(2, 11, dtype=bool))
    assert y.shape == (2, 11, 8)
    clone = LongformerEncoderLayer.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(
        clone(x, padding_mask=np.ones((2, 11), bool), global_mask=np.eye(2, 11, dtype=bool)),
        y,
        atol=0,
    )
    from keras_longformer.layers.longformer_encoder_layer import gelu_erf

    z = np.linspace(-5, 5, 101).astype("float32")
    np.testing.assert_allclose(gelu_erf(z), keras.activations.gelu(z, approximate=False), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(window=-1), "window=-1"),
        (dict(dilation=[1, 2, 3]), r"dilation=\[1, 2, 3\]"),
        (dict(causal=1), "causal=1"),
        (dict(dropout=-0.1), "dropout=-0.1"),
        (dict(num_heads=0), "num_heads=0"),
    ],
)
def test_encoder_layer_argument_errors(kwargs, match):
    args = dict(num_heads=2, intermediate_dim=12, window=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        LongformerEncoderLayer(**args)


def test_encoder_layer_hidden_not_divisible():
    layer = LongformerEncoderLayer(num_heads=3, intermediate_dim=12, window=3)
    with pytest.raises(ValueError, match="divisible by num_heads=3"):
        layer(np.zeros((1, 4, 8), "float32"))


# === Backbone ===


def test_backbone_outputs_and_config_round_trip():
    backbone = small_backbone()
    outputs = backbone(features())
    assert outputs["sequence_output"].shape == (BATCH, LENGTH, 16)
    assert outputs["pooled_output"].shape == (BATCH, 16)
    assert [layer.self_attention.window for layer in backbone.encoder_layers] == [2, 3]
    assert [layer.self_attention.dilation for layer in backbone.encoder_layers] == [1, [1, 2]]
    config = backbone.get_config()
    clone = models.LongformerBackbone.from_config(config)
    assert clone.get_config() == config
    assert keras.saving.get_registered_name(models.LongformerBackbone) == (
        "keras_longformer>LongformerBackbone"
    )


def test_backbone_masks_accept_bool_and_any_int_width():
    backbone = small_backbone()
    base = features()
    reference = as_numpy(backbone(base))
    for dtype in ["bool", "int8", "uint8", "int64", "float32"]:
        inputs = dict(
            base,
            token_ids=base["token_ids"].astype("int64"),
            padding_mask=base["padding_mask"].astype(dtype),
            global_mask=base["global_mask"].astype(dtype),
        )
        outputs = as_numpy(backbone(inputs))
        for key in reference:
            np.testing.assert_array_equal(outputs[key], reference[key], err_msg=dtype)


def test_backbone_right_padding_does_not_change_real_tokens():
    backbone = small_backbone()
    short = features(length=17)
    long = {
        k: np.pad(v, [(0, 0), (0, 9)], constant_values=PAD if k == "token_ids" else 0)
        for k, v in short.items()
    }
    a, b = as_numpy(backbone(short)), as_numpy(backbone(long))
    real = short["padding_mask"].astype(bool)
    np.testing.assert_allclose(
        b["sequence_output"][:, :17][real], a["sequence_output"][real], atol=1e-5
    )
    np.testing.assert_allclose(b["pooled_output"], a["pooled_output"], atol=1e-5)


def test_causal_backbone_ignores_the_future():
    backbone = small_backbone(causal=True)
    inputs = features()
    changed = {k: v.copy() for k, v in inputs.items()}
    changed["token_ids"][:, 15:] = 7
    a = as_numpy(backbone(inputs))["sequence_output"]
    b = as_numpy(backbone(changed))["sequence_output"]
    np.testing.assert_allclose(a[:, :15], b[:, :15], atol=1e-5)
    assert np.abs(a[:, 15:] - b[:, 15:]).max() > 1e-3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(window=[2, 3, 4]), r"window=\[2, 3, 4\]"),
        (dict(window=[2, -1]), r"window=\[2, -1\]"),
        (dict(dilation=[1, [1, 2, 3]]), r"dilation=\[1, \[1, 2, 3\]\]"),
        (dict(dilation=0), "dilation=0"),
        (dict(hidden_dim=15), "hidden_dim=15, num_heads=2"),
        (dict(attention_dropout=1), "attention_dropout=1"),
    ],
)
def test_backbone_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        small_backbone(**kwargs)


def test_extend_position_embeddings():
    backbone = small_backbone(max_sequence_length=10)
    longer = models.extend_position_embeddings(backbone, 35)
    assert longer.max_sequence_length == 35 and backbone.max_sequence_length == 10
    inputs = features(length=10)
    np.testing.assert_array_equal(
        as_numpy(longer(inputs))["sequence_output"], as_numpy(backbone(inputs))["sequence_output"]
    )
    old = backbone.embeddings.position_embedding.embeddings.numpy()
    new = longer.embeddings.position_embedding.embeddings.numpy()
    assert new.shape == (35 + PAD + 1, 16)
    reserved = PAD + 1
    np.testing.assert_array_equal(new[:reserved], old[:reserved])
    for start in range(reserved, new.shape[0], 10):
        block = new[start : start + 10]
        np.testing.assert_array_equal(block, old[reserved : reserved + len(block)])
    assert longer(features(length=35))["sequence_output"].shape == (BATCH, 35, 16)


# === Task models ===


def task_cases():
    rng = np.random.default_rng(1)
    x = features()
    return {
        "classifier": (
            lambda: models.LongformerClassifier(task_backbone(), num_classes=3),
            rng.integers(0, 3, (BATCH,)),
        ),
        "masked_lm": (
            lambda: models.LongformerMaskedLM(task_backbone()),
            np.where(rng.random((BATCH, LENGTH)) < 0.3, x["token_ids"], -100),
        ),
        "token_classifier": (
            lambda: models.LongformerTokenClassifier(task_backbone(), num_classes=4),
            np.where(x["padding_mask"] == 1, rng.integers(0, 4, (BATCH, LENGTH)), -100),
        ),
        "question_answering": (
            lambda: models.LongformerQuestionAnswering(task_backbone()),
            {
                "start_logits": rng.integers(0, LENGTH - 5, (BATCH,)),
                "end_logits": rng.integers(0, LENGTH - 5, (BATCH,)),
            },
        ),
        "causal_lm": (
            lambda: models.LongformerCausalLM(task_backbone(causal=True)),
            np.concatenate([x["token_ids"][:, 1:], np.full((BATCH, 1), -100)], axis=1),
        ),
    }


OUTPUT_NAMES = {
    "classifier": ["logits"],
    "masked_lm": ["logits"],
    "token_classifier": ["logits"],
    "question_answering": ["end_logits", "start_logits"],
    "causal_lm": ["logits"],
}


@pytest.mark.backends
@pytest.mark.parametrize("task", sorted(task_cases()))
def test_task_fits_saves_and_reloads(task, tmp_path):
    make, y = task_cases()[task]
    model = make()
    # Outputs keep task names (they name the ONNX outputs too).
    assert sorted(model.output_names) == OUTPUT_NAMES[task]
    model.compile()
    history = model.fit(features(), y, epochs=2, batch_size=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    predictions = as_numpy(model.predict(features(), verbose=0))
    path = str(tmp_path / f"{task}.keras")
    model.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. an optimizer that does not match the saved one
        restored = keras.models.load_model(path)
    assert type(restored) is type(model)
    assert restored.get_config() == model.get_config()
    restored_predictions = as_numpy(restored.predict(features(), verbose=0))
    for got, want in zip(
        *(list(p.values()) if isinstance(p, dict) else [p] for p in (restored_predictions, predictions))
    ):
        np.testing.assert_array_equal(got, want)
    if task == "classifier":
        # Compiled from the saved config, optimizer state included.
        iterations = [
            keras.ops.convert_to_numpy(m.optimizer.iterations) for m in (restored, model)
        ]
        assert iterations[0] == iterations[1]
        restored.fit(features(), y, epochs=1, batch_size=2, verbose=0)


def test_a_task_saved_before_training_keeps_its_optimizer_and_loss(tmp_path):
    """The user's compile survives a save before any step (the optimizer
    has no slots yet), and loading it warns about nothing."""
    model = models.LongformerClassifier(task_backbone(), num_classes=2)
    model.compile(optimizer=keras.optimizers.SGD(0.25, momentum=0.5), loss="mse")
    path = str(tmp_path / "untrained.keras")
    model.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restored = keras.models.load_model(path)
    assert type(restored.optimizer) is keras.optimizers.SGD
    assert float(keras.ops.convert_to_numpy(restored.optimizer.learning_rate)) == 0.25
    assert restored.optimizer.momentum == 0.5
    assert restored.loss == "mse"


def test_classifier_trains_the_pooler_a_masked_lm_froze():
    backbone = task_backbone()
    models.LongformerMaskedLM(backbone)
    assert not backbone.pooler_dense.trainable  # unused by the masked LM
    classifier = models.LongformerClassifier(backbone, num_classes=2)
    trainable = {id(w) for w in classifier.trainable_weights}
    assert all(id(w) in trainable for w in backbone.pooler_dense.weights)
    frozen = task_backbone()
    frozen.trainable = False  # a linear probe stays a linear probe
    probe = models.LongformerClassifier(frozen, num_classes=2)
    assert len(probe.trainable_weights) == 2


def test_masked_lm_decoder_is_tied():
    model = models.LongformerMaskedLM(task_backbone())
    embedding = model.backbone.token_embedding.embeddings
    assert sum(w is embedding for w in model.weights) == 1
    before = as_numpy(model(features()))
    embedding.assign(embedding.numpy() * 2.0)
    assert np.abs(as_numpy(model(features())) - before).max() > 1e-3


def test_causal_lm_needs_causal_backbone():
    with pytest.raises(ValueError, match="causal=True"):
        models.LongformerCausalLM(task_backbone())


def test_bits_per_token():
    logits = np.zeros((1, 3, 4), "float32")
    assert float(models.bits_per_token(logits, np.array([[0, 1, 2]]))) == pytest.approx(2.0)


@pytest.mark.parametrize(
    "task",
    # An encoder and a causal model under JAX and torch too; all of them here.
    [
        pytest.param(t, marks=pytest.mark.backends) if t in ("classifier", "causal_lm") else t
        for t in sorted(task_cases())
    ],
)
def test_mixed_bfloat16_trains_without_nan(task):
    make, y = task_cases()[task]
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = make()
        assert model.backbone.encoder_layers[0].compute_dtype == "bfloat16"
        model.compile()
        history = model.fit(features(), y, epochs=1, batch_size=2, verbose=0)
        outputs = model.predict(features(), verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.all(np.isfinite(history.history["loss"]))
    # The same weights in float32 answer the same, within bfloat16's rounding.
    reference = make()
    reference.set_weights(model.get_weights())
    expected = reference.predict(features(), verbose=0)
    for name in (outputs if isinstance(outputs, dict) else [None]):
        value = outputs[name] if name is not None else outputs
        target = expected[name] if name is not None else expected
        assert value.dtype == np.float32 and np.all(np.isfinite(value)), name
        scale = max(1.0, float(np.max(np.abs(target))))
        assert np.max(np.abs(value - target)) <= 0.05 * scale, name


# === Masked LM at mask positions; dtype ===


def test_masked_lm_computes_logits_only_at_mask_positions():
    model = models.LongformerMaskedLM(task_backbone())
    x = features()
    full = as_numpy(model(x))
    assert full.shape == (BATCH, LENGTH, VOCAB)
    positions = np.array([[1, 5, 7], [2, 2, 0], [3, 9, 11], [0, 4, 20]], "int32")
    at_positions = as_numpy(model({**x, "mask_positions": positions}))
    assert at_positions.shape == (BATCH, 3, VOCAB)
    expected = np.take_along_axis(full, positions[..., None], axis=1)
    assert np.abs(at_positions - expected).max() <= 1e-5
    # Trains on [B, P] labels, the way the preprocessor gives them.
    model.compile()
    labels = np.take_along_axis(x["token_ids"], positions, axis=1)
    history = model.fit({**x, "mask_positions": positions}, labels, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_backbone_dtype_round_trips():
    backbone = task_backbone(dtype="bfloat16")
    config = backbone.get_config()
    restored = models.LongformerBackbone.from_config(config)
    assert restored.dtype_policy.name == "bfloat16" and restored.get_config() == config
