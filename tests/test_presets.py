"""Presets (keras-hub's save_to_preset / from_preset), raw text in and out, and
Hugging Face checkpoints converted with their tokenizer: raw text through our
preprocessor and model against Hugging Face's tokenizer and model."""

import json
import os

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

import hf_fixtures
from bpe_fixtures import checkpoint_dirs
from bpe_fixtures import hf_tokenizer
from bpe_fixtures import varied_texts
from keras_longformer import models
from keras_longformer.convert import from_huggingface

ATOL = 1e-4
TEXTS = varied_texts(seed=4, count=4, max_words=60)[-4:]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    return checkpoint_dirs(str(tmp_path_factory.mktemp("bpe")))["tokenizer_json"]


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    return models.LongformerTokenizer.from_huggingface(tokenizer_dir)


def small_backbone(tokenizer, causal=False):
    return models.LongformerBackbone(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=32, window=[2, 4], dilation=[1, [1, 2]], causal=causal,
        max_sequence_length=96, dropout=0.0, attention_dropout=0.0,
    )


def to_numpy(outputs):
    if isinstance(outputs, dict):
        return {key: to_numpy(value) for key, value in outputs.items()}
    return keras.ops.convert_to_numpy(outputs)


def word_batch(texts):
    return tf.ragged.constant([text.split() or ["x"] for text in texts])


TASKS = {
    "text_classifier": (
        lambda t: models.LongformerTextClassifier(
            small_backbone(t), num_classes=3,
            preprocessor=models.LongformerTextClassifierPreprocessor(t, sequence_length=96)),
        keras_hub.models.TextClassifier,
        lambda: TEXTS,
    ),
    "question_answerer": (
        lambda t: models.LongformerQuestionAnswerer(
            small_backbone(t),
            preprocessor=models.LongformerQuestionAnswererPreprocessor(t, sequence_length=96)),
        None,
        lambda: (["who?", "what is it?", "a", "the question"], TEXTS),
    ),
    "token_classifier": (
        lambda t: models.LongformerTokenClassifier(
            small_backbone(t), num_classes=4,
            preprocessor=models.LongformerTokenClassifierPreprocessor(t, sequence_length=96)),
        None,
        lambda: word_batch(TEXTS),
    ),
    "causal_lm": (
        lambda t: models.LongformerCausalLM(
            small_backbone(t, causal=True),
            preprocessor=models.LongformerCausalLMPreprocessor(t, sequence_length=96)),
        keras_hub.models.CausalLM,
        lambda: TEXTS,
    ),
}


def preprocessed(preprocessor, inputs):
    """The features a preprocessor gives (dropping labels where it makes its own)."""
    outputs = preprocessor(x=inputs)
    return outputs[0] if isinstance(outputs, tuple) else outputs


@pytest.mark.parametrize("task", sorted(TASKS))
def test_task_preset_round_trip(task, tokenizer, tmp_path):
    make, keras_hub_base, inputs = TASKS[task]
    model = make(tokenizer)
    model.save_to_preset(str(tmp_path))
    assert {"config.json", "task.json", "preprocessor.json", "tokenizer.json", "model.weights.h5"} <= set(
        os.listdir(tmp_path)
    )
    restored = type(model).from_preset(str(tmp_path))
    assert type(restored) is type(model) and type(restored.preprocessor) is type(model.preprocessor)
    assert restored.preprocessor.get_config() == model.preprocessor.get_config()
    features = preprocessed(model.preprocessor, inputs())
    restored_features = preprocessed(restored.preprocessor, inputs())
    for key in features:
        np.testing.assert_array_equal(to_numpy(restored_features[key]), to_numpy(features[key]))
    expected, actual = to_numpy(model(features)), to_numpy(restored(features))
    for got, want in zip(*(list(o.values()) if isinstance(o, dict) else [o] for o in (actual, expected))):
        np.testing.assert_array_equal(got, want)
    if keras_hub_base is not None:  # keras-hub's own base class finds ours
        assert type(keras_hub_base.from_preset(str(tmp_path))) is type(model)


def test_backbone_tokenizer_and_preprocessor_presets(tokenizer, tmp_path):
    backbone = small_backbone(tokenizer)
    backbone.save_to_preset(str(tmp_path))
    tokenizer.save_to_preset(str(tmp_path))
    preprocessor = models.LongformerMaskedLMPreprocessor(tokenizer, sequence_length=64)
    preprocessor.save_to_preset(str(tmp_path))
    restored = keras_hub.models.Backbone.from_preset(str(tmp_path))
    assert type(restored) is models.LongformerBackbone
    assert restored.get_config() == backbone.get_config()
    features = models.LongformerTextClassifierPreprocessor(tokenizer, sequence_length=64)(TEXTS)
    for got, want in zip(to_numpy(restored(features)).values(), to_numpy(backbone(features)).values()):
        np.testing.assert_array_equal(got, want)
    loaded = keras_hub.tokenizers.Tokenizer.from_preset(str(tmp_path))
    assert type(loaded) is models.LongformerTokenizer
    assert loaded(TEXTS) == tokenizer(TEXTS)
    loaded = models.LongformerMaskedLMPreprocessor.from_preset(str(tmp_path))
    assert loaded.get_config() == preprocessor.get_config()
    # A masked LM from this preset gets the backbone weights and this preprocessor.
    mlm = models.LongformerMaskedLM.from_preset(str(tmp_path))
    x, y, weights = mlm.preprocessor(TEXTS)
    assert to_numpy(mlm(x)).shape == tuple(y.shape) + (tokenizer.vocabulary_size(),)


def test_task_names_follow_keras_hub_and_old_names_still_load():
    assert models.LongformerClassifier is models.LongformerTextClassifier
    assert models.LongformerQuestionAnswering is models.LongformerQuestionAnswerer
    assert issubclass(models.LongformerTextClassifier, keras_hub.models.TextClassifier)
    assert issubclass(models.LongformerMaskedLM, keras_hub.models.MaskedLM)
    assert issubclass(models.LongformerCausalLM, keras_hub.models.CausalLM)
    backbone = models.LongformerBackbone(
        vocabulary_size=40, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16, window=2
    )
    assert isinstance(backbone, keras_hub.models.Backbone)
    # `.keras` files written before the rename name the old classes.
    for old, new in (("LongformerClassifier", models.LongformerTextClassifier),
                     ("LongformerQuestionAnswering", models.LongformerQuestionAnswerer)):
        assert keras.saving.get_registered_object(f"keras_longformer>{old}") is new
    model = models.LongformerTextClassifier(backbone, num_classes=2)
    config = keras.saving.serialize_keras_object(model)
    config["registered_name"] = "keras_longformer>LongformerClassifier"
    assert type(keras.saving.deserialize_keras_object(config)) is models.LongformerTextClassifier


def test_preset_of_another_model_family_is_an_error(tmp_path):
    keras_hub.models.BertBackbone(
        vocabulary_size=10, num_layers=1, num_heads=1, hidden_dim=4, intermediate_dim=8
    ).save_to_preset(str(tmp_path))
    with pytest.raises(ValueError, match="BertBackbone"):
        models.LongformerBackbone.from_preset(str(tmp_path))
    for cls in (models.LongformerTextClassifier, models.LongformerTokenizer, models.LongformerCausalLMPreprocessor):
        with pytest.raises(ValueError, match=f"{cls.__name__} that is compatible with BertBackbone"):
            cls.from_preset(str(tmp_path))


def test_raw_text_and_feature_dicts_in_fit_evaluate_predict(tokenizer):
    model = TASKS["text_classifier"][0](tokenizer)
    model.compile(run_eagerly=True)  # the tf.data preprocessing is traced all the same
    features = to_numpy(model.preprocessor(TEXTS))
    labels = np.array([0, 1, 2, 0])
    from_text = model.predict(TEXTS, batch_size=4, verbose=0)
    np.testing.assert_allclose(model.predict(features, batch_size=4, verbose=0), from_text, atol=1e-6)
    model.fit(features, labels, batch_size=2, epochs=1, verbose=0)
    dataset = tf.data.Dataset.from_tensor_slices((TEXTS, labels)).batch(2)
    assert np.isfinite(model.evaluate(dataset, verbose=0)[0])
    with pytest.raises(ValueError, match="preprocessor"):
        models.LongformerTextClassifier(
            small_backbone(tokenizer), num_classes=2,
            preprocessor=models.LongformerCausalLMPreprocessor(tokenizer),
        )


# === Hugging Face checkpoints with their tokenizer ===


def hf_checkpoint(cls_name, tokenizer_dir, directory, **overrides):
    hf = hf_tokenizer(tokenizer_dir)
    model = hf_fixtures.random_hf_model(cls_name, seed=5, vocab_size=len(hf), **overrides)
    hf_fixtures.save(model, directory)
    hf.save_pretrained(directory)
    return model, hf


def long_texts():
    """Five texts of 20 to 250 tokens: longer than every window, each its own length."""
    rng = np.random.default_rng(0)
    words = "the quick brown fox jumps over lazy dog café 東京 12345 it's attention".split()
    return [" ".join(rng.choice(words, n)) for n in (30, 5, 120, 60, 7)]


def test_converted_classifier_on_raw_text_equals_hugging_face(tokenizer_dir, tmp_path):
    import torch

    hf_model, hf = hf_checkpoint("LongformerForSequenceClassification", tokenizer_dir, tmp_path)
    model = from_huggingface(str(tmp_path), task="auto")
    assert isinstance(model, models.LongformerTextClassifier)
    model.compile(run_eagerly=True)
    assert model.preprocessor.sequence_length == hf_model.config.max_position_embeddings - 2
    texts = long_texts()
    actual = model.predict(texts, batch_size=2, verbose=0)  # batches of different lengths
    encoding = hf(texts, padding=True, truncation=True, max_length=400, return_tensors="pt")
    with torch.no_grad():
        expected = hf_model(**encoding).logits.numpy()
    error = float(np.abs(actual - expected).max())
    print(f"classifier raw-text max abs error {error:.2e}")
    assert error <= ATOL


def test_converted_question_answerer_on_raw_text_equals_hugging_face(tokenizer_dir, tmp_path):
    import torch

    hf_model, hf = hf_checkpoint("LongformerForQuestionAnswering", tokenizer_dir, tmp_path, num_labels=2)
    model = from_huggingface(str(tmp_path), task="auto")
    assert isinstance(model, models.LongformerQuestionAnswerer)
    model.compile(run_eagerly=True)
    questions = ["who is it?", "the quick brown fox question here", "a", "12345?", "it's"]
    contexts = long_texts()
    actual = model.predict((questions, contexts), batch_size=2, verbose=0)
    encoding = hf(questions, contexts, padding=True, truncation="only_second", max_length=400, return_tensors="pt")
    with torch.no_grad():
        expected = hf_model(**encoding)  # global attention computed by Hugging Face
    real = encoding["attention_mask"].numpy() == 1
    width = real.shape[1]
    for name in ("start_logits", "end_logits"):
        got = actual[name][:, :width]
        error = float(np.abs(got - getattr(expected, name).numpy())[real].max())
        print(f"question answering raw-text {name} max abs error {error:.2e}")
        assert error <= ATOL
        assert (actual[name][:, width:] == -1e9).all()  # the padded tail


def test_cli_convert_writes_a_preset_directory(tokenizer_dir, tmp_path):
    from keras_longformer import cli

    hf_checkpoint("LongformerForSequenceClassification", tokenizer_dir, tmp_path / "hf")
    target = tmp_path / "preset"
    assert cli.main(["convert", str(tmp_path / "hf"), str(target), "--task", "auto", "--quiet"]) == 0
    with open(target / "task.json") as file:
        assert json.load(file)["registered_name"] == "keras_longformer>LongformerTextClassifier"
    model = models.LongformerTextClassifier.from_preset(str(target))
    assert model.preprocessor.sequence_length == 400
    assert cli.main(["convert", str(tmp_path / "hf"), str(target), "--quiet"]) == 1  # exists
    assert sorted(os.listdir(tmp_path)) == ["hf", "preset"]  # nothing half-written beside it


def test_serving_example_feeds_the_onnx_file_from_raw_text(tokenizer, tmp_path):
    """examples/serve_onnx.py --texts: the task's own preprocessor tokenizes
    for onnxruntime (the file holds no tokenizer). The test exports the file
    and compares what onnxruntime gave the example with Keras itself."""
    import subprocess
    import sys

    from keras_longformer.export import export_onnx

    model = TASKS["text_classifier"][0](tokenizer)
    model_path, onnx_path = tmp_path / "classifier.keras", tmp_path / "classifier.onnx"
    model.save(str(model_path))
    report = export_onnx(model, str(onnx_path), verify=False)
    assert report.preprocessor == "LongformerTextClassifierPreprocessor"  # not in the file
    texts = tmp_path / "texts.txt"
    lines = [" ".join(text.split()) for text in TEXTS]  # one text per line
    texts.write_text("\n".join(lines) + "\n", encoding="utf-8")
    saved = tmp_path / "served.npz"
    example = os.path.join(os.path.dirname(__file__), os.pardir, "examples", "serve_onnx.py")
    result = subprocess.run(
        [sys.executable, example, "--model", str(model_path), "--onnx", str(onnx_path),
         "--texts", str(texts), "--save-outputs", str(saved),
         "--lengths", "9", "--batch", "2", "--repeats", "1", "--provider", "cpu"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    served = np.load(str(saved))
    features = {
        name: keras.ops.convert_to_numpy(value)
        for name, value in model.preprocessor(lines).items()
    }
    for name, value in features.items():  # what onnxruntime was fed: this preprocessor's
        np.testing.assert_array_equal(served[f"feature_{name}"], value)
    batch, length = served["feature_token_ids"].shape
    assert batch == len(lines) and 1 < length <= 96  # padded to the longest, at most sequence_length
    (logits,) = [served[name] for name in served.files if name.startswith("output_")]
    expected = keras.ops.convert_to_numpy(model(features, training=False))
    assert logits.shape == (len(lines), expected.shape[-1])
    assert np.max(np.abs(logits - expected)) <= ATOL
