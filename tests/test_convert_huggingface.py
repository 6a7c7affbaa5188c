"""`from_huggingface` against Hugging Face's own PyTorch Longformer.

Random small checkpoints written by `save_pretrained` (see hf_fixtures.py),
in both serialization formats; max absolute error of `sequence_output` on
real tokens and of `pooled_output` must stay <= 1e-4.
"""

import json
import os
import sys

import keras
import numpy as np
import pytest

import hf_fixtures
from hf_fixtures import PAD
from hf_fixtures import batch
from hf_fixtures import hf_outputs

from keras_longformer import models
from keras_longformer.convert import backbone_config_from_huggingface
from keras_longformer.convert import from_huggingface
from helpers import max_abs_error

ATOL = 1e-4
LENGTHS = [1, 7, 33, 100, 301]
PATTERNS = ["none", "first", "middle", "many"]



@pytest.fixture(scope="module")
def hf_model():
    return hf_fixtures.random_hf_model("LongformerModel")


@pytest.fixture(scope="module", params=["safetensors", "bin"])
def converted(request, hf_model, tmp_path_factory):
    directory = tmp_path_factory.mktemp(f"longformer_{request.param}")
    hf_fixtures.save(hf_model, directory, request.param)
    return from_huggingface(str(directory))


@pytest.mark.parametrize(
    "length",
    # Under JAX and torch too at 7 and 100 tokens (each new length compiles
    # there); 301 tokens of the "many" pattern hold 151 global tokens, over
    # JAX's default bound of 65.
    [pytest.param(n, marks=pytest.mark.backends) if n in (7, 100) else n for n in LENGTHS],
)
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
    "LongformerForSequenceClassification": ("classifier", models.LongformerTextClassifier, "logits"),
    "LongformerForTokenClassification": ("token_classifier", models.LongformerTokenClassifier, "logits"),
    "LongformerForQuestionAnswering": ("question_answering", models.LongformerQuestionAnswerer, None),
}


@pytest.mark.backends
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


# === Bad checkpoints: one clear error naming the file or key, before any work ===


def write_config_text(directory, text):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w") as file:
        file.write(text)
    return str(directory)


@pytest.mark.parametrize(
    "text, fragments",
    [
        ('{"model_type": "longformer", ', ["config.json is not valid JSON", "line 1"]),
        ("[1, 2]", ["must hold a JSON object", "Received: a JSON list"]),
    ],
)
def test_config_that_is_not_a_json_object(saved_state, tmp_path, text, fragments):
    state, config = saved_state
    directory = write_checkpoint(tmp_path, state, config)
    write_config_text(directory, text)
    with pytest.raises(ValueError) as info:
        from_huggingface(directory)
    message = str(info.value)
    assert "\n" not in message and str(tmp_path) in message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize(
    "change, fragments",
    [
        ({"model_type": "bert"}, ["model_type='bert'"]),
        ({"hidden_size": None}, ["missing key: hidden_size", "Received keys:"]),
        ({"hidden_size": "16"}, ["hidden_size='16'"]),
        ({"hidden_size": 15}, ["divisible", "hidden_size=15, num_attention_heads=2"]),
        ({"max_position_embeddings": 2}, ["too small", "max_position_embeddings=2, pad_token_id=1"]),
        ({"layer_norm_eps": -1.0}, ["layer_norm_eps=-1.0"]),
        ({"hidden_dropout_prob": 1.5}, ["hidden_dropout_prob=1.5"]),
    ],
)
def test_bad_config_values_name_key_and_file(saved_state, tmp_path, change, fragments):
    state, config = saved_state
    config = {k: v for k, v in dict(config, **change).items() if v is not None}
    with pytest.raises(ValueError) as info:
        from_huggingface(write_checkpoint(tmp_path, state, config))
    message = str(info.value)
    assert "\n" not in message and "config.json" in message
    for fragment in fragments:
        assert fragment in message, message


def test_config_fallbacks_are_transformers_defaults():
    from transformers import LongformerConfig

    from keras_longformer.convert.huggingface_config import HF_DEFAULTS
    from keras_longformer.convert.huggingface_config import REQUIRED_KEYS

    defaults = LongformerConfig()
    for key, value in HF_DEFAULTS.items():
        assert value == getattr(defaults, key), (key, value, getattr(defaults, key))
    hf = {key: getattr(defaults, key) for key in REQUIRED_KEYS}
    kwargs = backbone_config_from_huggingface(hf)
    assert kwargs["layer_norm_epsilon"] == 1e-12
    assert kwargs["type_vocab_size"] == 2
    assert kwargs["window"] == 256 and kwargs["pad_token_id"] == 1
    assert kwargs["dropout"] == 0.1 and kwargs["attention_dropout"] == 0.1


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_truncated_weights_name_the_file(hf_model, tmp_path, fmt):
    directory = hf_fixtures.save(hf_model, tmp_path, fmt)
    name = "model.safetensors" if fmt == "safetensors" else "pytorch_model.bin"
    weights = os.path.join(directory, name)
    with open(weights, "rb") as file:
        data = file.read()
    with open(weights, "wb") as file:
        file.write(data[: len(data) // 2])
    with pytest.raises(ValueError) as info:
        from_huggingface(directory)
    message = str(info.value)
    assert "\n" not in message
    assert weights in message and "truncated or corrupt" in message, message


def test_missing_shard_is_named(saved_state, tmp_path):
    state, config = saved_state
    directory = write_checkpoint(tmp_path, state, config)
    os.remove(os.path.join(directory, "model.safetensors"))
    with open(os.path.join(directory, "model.safetensors.index.json"), "w") as file:
        json.dump({"weight_map": {key: "model-00001-of-00002.safetensors" for key in state}}, file)
    with pytest.raises(FileNotFoundError, match="model-00001-of-00002.safetensors"):
        from_huggingface(directory)


def test_sharded_safetensors_match_one_file(hf_model, saved_state, tmp_path):
    from safetensors.numpy import save_file

    state, config = saved_state
    keys = sorted(state)
    shards = {"a.safetensors": keys[::2], "b.safetensors": keys[1::2]}
    os.makedirs(tmp_path / "sharded")
    for shard, names in shards.items():
        save_file({k: state[k] for k in names}, str(tmp_path / "sharded" / shard))
    weight_map = {k: shard for shard, names in shards.items() for k in names}
    (tmp_path / "sharded" / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": weight_map})
    )
    (tmp_path / "sharded" / "config.json").write_text(json.dumps(config))
    backbone = from_huggingface(str(tmp_path / "sharded"))
    ids, padding, glob = batch(20, "first")
    expected = hf_outputs(hf_model, ids, padding, glob, "first").last_hidden_state.numpy()
    actual = backbone({"token_ids": ids, "padding_mask": padding, "global_mask": glob})
    assert max_abs_error(actual["sequence_output"], expected, padding.astype(bool)) <= ATOL


def test_task_head_of_a_bare_checkpoint(saved_state, tmp_path):
    state, config = saved_state
    directory = write_checkpoint(tmp_path, state, config)
    with pytest.raises(ValueError, match=r"task='classifier'.*bare LongformerModel.*task='backbone'"):
        from_huggingface(directory, task="classifier")


def test_untied_masked_lm_decoder(tmp_path):
    hf_model = hf_fixtures.random_hf_model("LongformerForMaskedLM", seed=4)
    directory = hf_fixtures.save(hf_model, tmp_path, "bin")
    state = hf_model.state_dict()
    untied = {k: v.clone() for k, v in state.items()}
    untied["lm_head.decoder.weight"] += 0.5
    import torch

    torch.save(untied, os.path.join(directory, "pytorch_model.bin"))
    with pytest.raises(ValueError) as info:
        from_huggingface(directory, task="masked_lm")
    message = str(info.value)
    assert "\n" not in message
    assert "`lm_head.decoder.weight` is not tied" in message and "max abs difference 0.5" in message


def test_weights_are_read_one_at_a_time(tmp_path):
    """Reading every tensor holds one tensor at a time, not the whole file."""
    import tracemalloc

    from safetensors.numpy import save_file

    from keras_longformer.convert.checkpoint_tensors import load_state_dict

    tensor_bytes = 256 * 1024 * 4
    save_file(
        {f"t{i}": np.full((256, 1024), i, "float32") for i in range(8)},
        str(tmp_path / "model.safetensors"),
    )
    tracemalloc.start()
    try:
        state = load_state_dict(str(tmp_path))
        for key in state:
            assert float(state[key][0, 0]) == int(key[1:])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    print(f"peak traced memory reading 8 tensors of {tensor_bytes} bytes: {peak}")
    assert peak < 1.5 * tensor_bytes, peak
