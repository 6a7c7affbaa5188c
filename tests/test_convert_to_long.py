"""`convert_to_long`: the paper's recipe, checked against the short model itself.

Contract: with a window that covers the input, the long model equals the
source (Hugging Face PyTorch RoBERTa, XLM-RoBERTa, CamemBERT; keras-hub
RoBERTa) within 1e-4 on every input the source can read, with or without
global tokens (the global projections are copies of the local ones).
"""

import os

import keras
import numpy as np
import pytest

import hf_fixtures
from bpe_fixtures import train_bpe
from hf_fixtures import PAD
from hf_fixtures import VOCAB
from keras_longformer import models
from keras_longformer.convert import convert_to_long
from keras_longformer.convert import copy_global_projections

ATOL = 1e-4
SHORT = 32  # the source's positions
LONG = 4 * SHORT
WINDOWS = [SHORT, SHORT + 8]  # one-sided, per layer: each covers any input the source reads


def roberta_config(config_cls="RobertaConfig", **overrides):
    import transformers

    kwargs = dict(
        vocab_size=VOCAB, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=24, max_position_embeddings=SHORT + PAD + 1, pad_token_id=PAD,
        bos_token_id=0, eos_token_id=2, type_vocab_size=1,
    )
    kwargs.update(overrides)
    return getattr(transformers, config_cls)(**kwargs)


def random_source(cls_name, directory, config_cls="RobertaConfig", seed=0, tokenizer=False, **overrides):
    """A random Hugging Face model saved to `directory`; returns the torch model."""
    import torch
    import transformers

    torch.manual_seed(seed)
    model = getattr(transformers, cls_name)(roberta_config(config_cls, **overrides)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.3)
    model.save_pretrained(directory)
    if tokenizer:
        train_bpe(directory, vocab_size=overrides["vocab_size"])
    return model


def keras_outputs(model, ids, padding, glob):
    outputs = model({"token_ids": ids, "padding_mask": padding, "global_mask": glob})
    return keras.tree.map_structure(keras.ops.convert_to_numpy, outputs)


def max_error(actual, expected, padding):
    """Max abs error over real tokens (padded rows are not the contract)."""
    real = padding.astype(bool)
    return float(np.max(np.abs(np.asarray(actual)[real] - np.asarray(expected)[real])))


@pytest.fixture(scope="module")
def roberta(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("roberta"))
    return random_source("RobertaModel", directory), directory


@pytest.fixture(scope="module")
def long_roberta(roberta):
    _, directory = roberta
    return convert_to_long(directory, max_sequence_length=LONG, window=WINDOWS)


@pytest.mark.backends
@pytest.mark.parametrize("length", [1, 7, SHORT])
@pytest.mark.parametrize("pattern", ["none", "first", "many"])
def test_long_roberta_equals_roberta(roberta, long_roberta, length, pattern):
    torch_model, _ = roberta
    ids, padding, glob = hf_fixtures.batch(length, pattern)
    import torch

    with torch.no_grad():
        expected = torch_model(torch.tensor(ids), attention_mask=torch.tensor(padding))
    outputs = keras_outputs(long_roberta, ids, padding, glob)
    error = max_error(outputs["sequence_output"], expected.last_hidden_state.numpy(), padding)
    assert error <= ATOL, error
    pooled = np.max(np.abs(outputs["pooled_output"] - expected.pooler_output.numpy()))
    assert pooled <= ATOL, pooled


def test_long_model_reads_past_the_source(long_roberta):
    ids, padding, glob = hf_fixtures.batch(LONG, "first", batch_size=1)
    outputs = keras_outputs(long_roberta, ids, padding, glob)
    assert outputs["sequence_output"].shape == (1, LONG, 16)
    assert np.all(np.isfinite(outputs["sequence_output"]))


def test_positions_are_tiled_with_the_reserved_rows_kept(roberta, long_roberta):
    torch_model, _ = roberta
    source = torch_model.embeddings.position_embeddings.weight.detach().numpy()
    table = keras.ops.convert_to_numpy(long_roberta.embeddings.position_embedding.embeddings)
    reserved = PAD + 1
    assert table.shape == (LONG + reserved, 16)
    np.testing.assert_array_equal(table[:reserved], source[:reserved])
    k = np.arange(LONG)
    np.testing.assert_array_equal(table[reserved + k], source[reserved + k % SHORT])


def test_global_projections_start_as_copies_and_copy_again(roberta):
    _, directory = roberta
    model = convert_to_long(directory, max_sequence_length=LONG, window=8)
    attention = model.encoder_layers[0].self_attention
    pairs = [
        (attention._query_dense, attention._global_query_dense),
        (attention._key_dense, attention._global_key_dense),
        (attention._value_dense, attention._global_value_dense),
    ]
    for local, glob in pairs:
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(local.kernel), keras.ops.convert_to_numpy(glob.kernel))
        local.kernel.assign(local.kernel + 1.0)  # as masked-LM training moves them
        local.bias.assign(local.bias - 1.0)
    copy_global_projections(model)
    for local, glob in pairs:
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(local.kernel), keras.ops.convert_to_numpy(glob.kernel))
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(local.bias), keras.ops.convert_to_numpy(glob.bias))


@pytest.mark.parametrize(
    "cls_name, config_cls",
    [
        ("RobertaForMaskedLM", "RobertaConfig"),
        ("XLMRobertaForMaskedLM", "XLMRobertaConfig"),
        ("CamembertForMaskedLM", "CamembertConfig"),
    ],
)
def test_masked_lm_sources_give_a_long_masked_lm(cls_name, config_cls, tmp_path):
    import torch

    # A byte-level BPE has the 256 bytes and 5 special tokens at least.
    torch_model = random_source(cls_name, str(tmp_path), config_cls, tokenizer=True, vocab_size=300)
    model = convert_to_long(str(tmp_path), max_sequence_length=LONG, window=SHORT)
    assert isinstance(model, models.LongformerMaskedLM)
    assert model.backbone.max_sequence_length == LONG
    # The byte-level BPE files came with it: raw text in.
    assert isinstance(model.preprocessor, models.LongformerMaskedLMPreprocessor)
    assert model.preprocessor.sequence_length == LONG
    ids, padding, glob = hf_fixtures.batch(SHORT, "first")
    with torch.no_grad():
        expected = torch_model(torch.tensor(ids), attention_mask=torch.tensor(padding)).logits.numpy()
    logits = keras.ops.convert_to_numpy(
        model.predict({"token_ids": ids, "padding_mask": padding, "global_mask": glob}, verbose=0)
    )
    assert max_error(logits, expected, padding) <= ATOL


def test_camembert_model_gives_a_backbone(tmp_path):
    import torch

    torch_model = random_source("CamembertModel", str(tmp_path), "CamembertConfig")
    model = convert_to_long(str(tmp_path), max_sequence_length=LONG, window=SHORT)
    assert isinstance(model, models.LongformerBackbone)
    ids, padding, glob = hf_fixtures.batch(20, "none")
    with torch.no_grad():
        expected = torch_model(torch.tensor(ids), attention_mask=torch.tensor(padding))
    outputs = keras_outputs(model, ids, padding, glob)
    assert max_error(outputs["sequence_output"], expected.last_hidden_state.numpy(), padding) <= ATOL


def test_a_legacy_bin_checkpoint_converts(roberta, long_roberta, tmp_path):
    torch_model, _ = roberta
    directory = hf_fixtures.save(torch_model, str(tmp_path), fmt="bin")
    model = convert_to_long(directory, max_sequence_length=LONG, window=WINDOWS)
    for ours, theirs in zip(model.weights, long_roberta.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs))
