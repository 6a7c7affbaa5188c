"""The Keras habits users bring: `enable_lora(rank)` and `quantize("int8")`.

Marked `backends`: the same checks under JAX and torch
(tests/test_backends_portable_recipes.py).
"""

import keras
import numpy as np
import pytest

from keras_longformer import models

pytestmark = pytest.mark.backends

VOCAB, LENGTH = 50, 24
# keras's int8 mode quantizes weights per output channel and activations
# per token: about 1% of the output's scale (measured 0.5-1.5% here).
QUANTIZED_RELATIVE_ERROR = 0.05


def backbone(causal=False, seed=0):
    keras.utils.set_random_seed(seed)
    return models.LongformerBackbone(
        vocabulary_size=VOCAB, num_layers=2, num_heads=2, hidden_dim=32, intermediate_dim=64,
        window=[3, 4], dilation=[1, [1, 2]], causal=causal, max_sequence_length=32,
        dropout=0.0, attention_dropout=0.0,
    )


def features(causal=False):
    rng = np.random.default_rng(0)
    ids = rng.integers(3, VOCAB, (3, LENGTH)).astype("int32")
    padding = np.ones((3, LENGTH), "int32")
    padding[1, -5:] = 0
    ids[padding == 0] = 1
    glob = np.zeros((3, LENGTH), "int32")
    if not causal:
        glob[:, 0] = 1
        glob[2, 9:12] = 1
    return {"token_ids": ids, "padding_mask": padding, "global_mask": glob}


def numpy(tree):
    return keras.tree.map_structure(keras.ops.convert_to_numpy, tree)


def flat(tree):
    return np.concatenate([np.ravel(x) for x in keras.tree.flatten(numpy(tree))])


# === LoRA ===


def test_lora_adapts_query_and_value_local_and_global(tmp_path):
    model = backbone()
    x = features()
    before = flat(model(x))
    total = model.count_params()
    model.enable_lora(2)
    # Rank init: B is zero, so the outputs are unchanged.
    assert np.max(np.abs(flat(model(x)) - before)) == 0.0
    names = sorted({w.path.split("/")[-2] + "/" + w.path.split("/")[-1] for w in model.trainable_weights})
    assert names == sorted(
        f"{projection}/{weight}"
        for projection in ("query", "value", "query_global", "value_global")
        for weight in ("bias", "lora_kernel_a", "lora_kernel_b")
    )
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable / total < 0.06, (trainable, total)
    # Training moves the outputs; the adapters round-trip through their file.
    # (A token classifier: its head is outside the backbone and its pooler
    # stays frozen, so the backbone trains only what LoRA left trainable.)
    tagger = models.LongformerTokenClassifier(model, num_classes=3)
    tagger.compile(optimizer=keras.optimizers.Adam(0.01))
    labels = np.random.default_rng(1).integers(0, 3, (3, LENGTH))
    tagger.fit(x, labels, epochs=3, verbose=0)
    trained = flat(model(x))
    assert np.max(np.abs(trained - before)) > 1e-3
    path = str(tmp_path / "adapters.lora.h5")
    model.save_lora_weights(path)
    fresh = backbone()
    fresh.load_lora_weights(path)
    # Everything but the adapters and the trainable biases is as initialised
    # in both (same seed): copy those biases, then the outputs must agree.
    for ours, theirs in zip(fresh.weights, model.weights):
        if ours.path.endswith("/bias") and theirs.trainable:
            ours.assign(theirs)
    assert np.max(np.abs(flat(fresh(x)) - trained)) <= 1e-5


# === int8 ===


TASKS = {
    "backbone": lambda: backbone(),
    "text_classifier": lambda: models.LongformerTextClassifier(backbone(), num_classes=3),
    "token_classifier": lambda: models.LongformerTokenClassifier(backbone(), num_classes=4),
    "question_answerer": lambda: models.LongformerQuestionAnswerer(backbone()),
    "masked_lm": lambda: models.LongformerMaskedLM(backbone()),
    "causal_lm": lambda: models.LongformerCausalLM(backbone(causal=True)),
}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_int8_predictions_stay_close_and_survive_saving(name, tmp_path):
    model = TASKS[name]()
    x = features(causal=name == "causal_lm")
    predict = (lambda m: m(x)) if name == "backbone" else (lambda m: m.predict(x, verbose=0))
    expected = flat(predict(model))
    with pytest.warns(UserWarning, match="does not have a `quantize` method"):  # LayerNorm, Dropout...
        model.quantize("int8")
    quantized = [layer.path for layer in model._flatten_layers() if layer.quantization_mode == "int8"]
    assert any("token_embedding" in path for path in quantized)
    assert any("self_attention/query" in path for path in quantized)
    actual = flat(predict(model))
    relative = np.max(np.abs(actual - expected)) / np.max(np.abs(expected))
    assert relative <= QUANTIZED_RELATIVE_ERROR, relative
    assert relative > 0.0  # it did quantize
    path = str(tmp_path / "quantized.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert np.max(np.abs(flat(predict(loaded)) - actual)) <= 1e-6
