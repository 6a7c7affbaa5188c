"""`from_huggingface` against Hugging Face's own PyTorch Longformer.

Random small checkpoints written by `save_pretrained` (see hf_fixtures.py),
in both serialization formats; max absolute error of `sequence_output` on
real tokens and of `pooled_output` must stay <= 1e-4.
"""

import json
import os
import sys

import numpy as np
import pytest

import hf_fixtures
from hf_fixtures import PAD
from hf_fixtures import batch
from hf_fixtures import hf_outputs

from keras_longformer import models
from keras_longformer.convert import backbone_config_from_huggingface
from keras_longformer.convert import from_huggingface

ATOL = 1e-4
LENGTHS = [1, 7, 33, 100, 301]
PATTERNS = ["none", "first", "middle", "many"]


def max_abs_error(actual, expected, where=None):
    diff = np.abs(np.asarray(actual, np.float64) - np.asarray(expected, np.float64))
    return float(np.max(diff[where] if where is not None else diff))


@pytest.fixture(scope="module")
def hf_model():
    return hf_fixtures.random_hf_model("LongformerModel")


@pytest.fixture(scope="module", params=["safetensors", "bin"])
def converted(request, hf_model, tmp_path_factory):
    directory = tmp_path_factory.mktemp(f"longformer_{request.param}")
    hf_fixtures.save(hf_model, directory, request.param)
    return from_huggingface(str(directory))


@pytest.mark.parametrize("length", LENGTHS)
def test_backbone_parity(hf_model, converted, length):
    assert converted.windows == [4, 2, 8]
    errors = {}
    for pattern in PATTERNS:
        ids, padding, glob = batch(length, pattern, seed=length)
        expected = hf_outputs(hf_model, ids, padding, glob, pattern)
        actual = converted({"token_ids": ids, "padding_mask": padding, "global_mask": glob})
        errors[pattern] = (
            max_abs_error(
                actual["sequence_output"],
                expected.last_hidden_state.numpy(),
                padding.astype(bool),
            ),
            max_abs_error(actual["pooled_output"], expected.pooler_output.numpy()),
        )
    print(f"length {length}: max abs error (sequence, pooled) {errors}")
    assert max(max(e) for e in errors.values()) <= ATOL, errors


TASKS = {
    "LongformerForMaskedLM": ("masked_lm", models.LongformerMaskedLM, "logits"),
    "LongformerForSequenceClassification": ("classifier", models.LongformerClassifier, "logits"),
    "LongformerForTokenClassification": ("token_classifier", models.LongformerTokenClassifier, "logits"),
    "LongformerForQuestionAnswering": ("question_answering", models.LongformerQuestionAnswering, None),
}


@pytest.mark.parametrize("cls_name", sorted(TASKS))
def test_task_parity(cls_name, tmp_path):
    task, keras_cls, _ = TASKS[cls_name]
    overrides = {"num_labels": 2} if task == "question_answering" else {}
    hf_model = hf_fixtures.random_hf_model(cls_name, seed=1, **overrides)
    fmt = "bin" if task == "masked_lm" else "safetensors"  # .bin holds tied copies
    directory = hf_fixtures.save(hf_model, tmp_path, fmt)
    model = from_huggingface(directory, task="auto")
    assert isinstance(model, keras_cls)
    for length, pattern in [(37, "first"), (100, "many")]:
        ids, padding, glob = batch(length, pattern, seed=3)
        expected = hf_outputs(hf_model, ids, padding, glob, pattern)
        actual = model({"token_ids": ids, "padding_mask": padding, "global_mask": glob})
        if task == "question_answering":
            pairs = [
                (actual["start_logits"], expected.start_logits.numpy()),
                (actual["end_logits"], expected.end_logits.numpy()),
            ]
            real = padding.astype(bool)
        else:
            pairs = [(actual, expected.logits.numpy())]
            real = padding.astype(bool) if task != "classifier" else None
        for got, want in pairs:
            error = max_abs_error(got, want, real)
            print(f"{cls_name} length {length}: max abs error {error:.2e}")
            assert error <= ATOL


def test_backbone_from_task_checkpoint(tmp_path):
    hf_model = hf_fixtures.random_hf_model("LongformerForMaskedLM", seed=2)
    directory = hf_fixtures.save(hf_model, tmp_path)
    with pytest.warns(UserWarning, match="pooler"):
        backbone = from_huggingface(directory)
    assert isinstance(backbone, models.LongformerBackbone)
    ids, padding, glob = batch(50, "first")
    expected = hf_outputs(hf_model.longformer, ids, padding, glob, "first")
    actual = backbone({"token_ids": ids, "padding_mask": padding, "global_mask": glob})
    error = max_abs_error(
        actual["sequence_output"], expected.last_hidden_state.numpy(), padding.astype(bool)
    )
    assert error <= ATOL


def test_config_mapping():
    hf = json.loads(hf_fixtures.hf_config().to_json_string())
    kwargs = backbone_config_from_huggingface(hf)
    assert kwargs["window"] == [4, 2, 8]
    assert kwargs["max_sequence_length"] == 400
    assert kwargs["pad_token_id"] == PAD
    base = dict(hf, attention_window=512, max_position_embeddings=4098,
                num_hidden_layers=12)
    kwargs = backbone_config_from_huggingface(base)
    assert kwargs["window"] == 256 and kwargs["max_sequence_length"] == 4096
    with pytest.raises(ValueError, match="attention_window=7"):
        backbone_config_from_huggingface(dict(hf, attention_window=7))
    with pytest.raises(ValueError, match=r"attention_window=\[8, 4\]"):
        backbone_config_from_huggingface(dict(hf, attention_window=[8, 4]))
    with pytest.raises(ValueError, match="gelu_new"):
        backbone_config_from_huggingface(dict(hf, hidden_act="gelu_new"))


@pytest.fixture(scope="module")
def saved_state(hf_model, tmp_path_factory):
    from safetensors.numpy import load_file

    directory = tmp_path_factory.mktemp("longformer_state")
    hf_fixtures.save(hf_model, directory)
    state = load_file(os.path.join(directory, "model.safetensors"))
    with open(os.path.join(directory, "config.json")) as file:
        config = json.load(file)
    return state, config


def write_checkpoint(directory, state, config):
    from safetensors.numpy import save_file

    os.makedirs(directory, exist_ok=True)
    save_file(state, os.path.join(directory, "model.safetensors"))
    with open(os.path.join(directory, "config.json"), "w") as file:
        json.dump(config, file)
    return str(directory)


def test_missing_key_is_named(saved_state, tmp_path):
    state, config = saved_state
    key = "encoder.layer.1.attention.self.key_global.weight"
    broken = {k: v for k, v in state.items() if k != key}
    with pytest.raises(ValueError, match=f"Missing key `{key}`"):
        from_huggingface(write_checkpoint(tmp_path, broken, config))


def test_unexpected_key_is_named(saved_state, tmp_path):
    state, config = saved_state
    broken = dict(state, **{"encoder.layer.3.output.dense.weight": np.zeros((2, 2), "float32")})
    with pytest.raises(ValueError, match=r"Unexpected key.*`encoder\.layer\.3\.output\.dense\.weight`"):
        from_huggingface(write_checkpoint(tmp_path, broken, config))


def test_shape_mismatch_is_named(saved_state, tmp_path):
    state, config = saved_state
    key = "encoder.layer.0.intermediate.dense.weight"
    broken = dict(state, **{key: np.zeros((7, 16), "float32")})
    with pytest.raises(ValueError, match=f"Shape mismatch for `{key}`"):
        from_huggingface(write_checkpoint(tmp_path, broken, config))


def test_bin_without_torch_names_the_fix(hf_model, tmp_path, monkeypatch):
    directory = hf_fixtures.save(hf_model, tmp_path, "bin")
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"weights_only=True.*Install torch"):
        from_huggingface(directory)


def test_bfloat16_safetensors(hf_model, tmp_path):
    import torch

    half = hf_fixtures.random_hf_model("LongformerModel").to(torch.bfloat16)
    directory = hf_fixtures.save(half, tmp_path)
    backbone = from_huggingface(directory)
    expected = half.embeddings.word_embeddings.weight.float().detach().numpy()
    np.testing.assert_array_equal(
        backbone.embeddings.token_embedding.embeddings.numpy(), expected
    )


def test_unknown_task_and_missing_files(tmp_path):
    with pytest.raises(ValueError, match="task='summarize'"):
        from_huggingface(str(tmp_path), task="summarize")
    with pytest.raises(FileNotFoundError, match="config.json"):
        from_huggingface(str(tmp_path))
    with open(os.path.join(tmp_path, "config.json"), "w") as file:
        file.write(hf_fixtures.hf_config().to_json_string())
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        from_huggingface(str(tmp_path))
