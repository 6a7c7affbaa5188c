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


def keras_hub_roberta(masked_lm=False, tokenizer_dir=None):
    import keras_hub

    keras.utils.set_random_seed(1)
    backbone = keras_hub.models.RobertaBackbone(
        vocabulary_size=300 if tokenizer_dir else VOCAB, num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=24, max_sequence_length=SHORT, dropout=0.0,
    )
    for weight in backbone.weights:  # larger than the 0.02 initialisation: a wrong map shows
        weight.assign(np.random.default_rng(len(weight.path)).normal(0, 0.3, weight.shape))
    if not masked_lm:
        return backbone
    preprocessor = None
    if tokenizer_dir:
        tokenizer = keras_hub.models.RobertaTokenizer(
            vocabulary=os.path.join(tokenizer_dir, "vocab.json"),
            merges=os.path.join(tokenizer_dir, "merges.txt"),
        )
        preprocessor = keras_hub.models.RobertaMaskedLMPreprocessor(tokenizer, sequence_length=SHORT)
    model = keras_hub.models.RobertaMaskedLM(backbone, preprocessor=preprocessor)
    for weight in model.masked_lm_head.weights:
        weight.assign(np.random.default_rng(len(weight.path)).normal(0, 0.3, weight.shape))
    return model


def right_padded(length, pattern):
    """keras-hub's RoBERTa counts positions from the first token whatever the padding."""
    return hf_fixtures.batch(length, pattern)


@pytest.mark.backends
@pytest.mark.parametrize("pattern", ["none", "first"])
def test_keras_hub_roberta_backbone(pattern):
    source = keras_hub_roberta()
    with pytest.warns(UserWarning, match="no pooler"):
        model = convert_to_long(source, max_sequence_length=LONG, window=SHORT)
    for length in (1, 9, SHORT):
        ids, padding, glob = right_padded(length, pattern)
        expected = keras.ops.convert_to_numpy(source({"token_ids": ids, "padding_mask": padding}))
        outputs = keras_outputs(model, ids, padding, glob)
        assert max_error(outputs["sequence_output"], expected, padding) <= ATOL


def test_keras_hub_masked_lm_and_its_preset_directory(tmp_path):
    tokenizer_dir = train_bpe(str(tmp_path / "bpe"), vocab_size=300)
    source = keras_hub_roberta(masked_lm=True, tokenizer_dir=tokenizer_dir)
    ids, padding, glob = right_padded(SHORT, "first")
    positions = np.tile(np.arange(4), (len(ids), 1))
    expected = keras.ops.convert_to_numpy(
        source({"token_ids": ids, "padding_mask": padding, "mask_positions": positions})
    )
    preset = str(tmp_path / "preset")
    source.save_to_preset(preset)
    for given in (source, preset):
        model = convert_to_long(given, max_sequence_length=LONG, window=SHORT)
        assert isinstance(model, models.LongformerMaskedLM)
        assert isinstance(model.preprocessor, models.LongformerMaskedLMPreprocessor)
        logits = keras.ops.convert_to_numpy(
            model({"token_ids": ids, "padding_mask": padding, "global_mask": glob, "mask_positions": positions})
        )
        assert np.max(np.abs(logits - expected)) <= ATOL
    # The same tokenizer: text in gives the source's ids.
    text = "the quick brown fox"
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model.preprocessor.tokenizer(text)),
        keras.ops.convert_to_numpy(source.preprocessor.tokenizer(text)),
    )


# === Bad input: a clear error before any weight is read ===


def test_bert_and_other_architectures_are_refused(tmp_path):
    import transformers

    bert = tmp_path / "bert"
    transformers.BertModel(
        transformers.BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=8, max_position_embeddings=16)
    ).save_pretrained(bert)
    with pytest.raises(ValueError, match=r"model_type='bert' is BERT-family.*token type"):
        convert_to_long(str(bert), max_sequence_length=64)
    longformer = hf_fixtures.save(hf_fixtures.random_hf_model(), str(tmp_path / "longformer"))
    with pytest.raises(ValueError, match="already a Longformer.*extend_position_embeddings"):
        convert_to_long(longformer, max_sequence_length=1024)
    with pytest.raises(ValueError, match="RobertaBackbone or RobertaMaskedLM. Received: LongformerBackbone"):
        convert_to_long(models.LongformerBackbone(vocabulary_size=10, num_layers=1, num_heads=1, hidden_dim=4,
                                                  intermediate_dim=4, window=2), max_sequence_length=64)
    with pytest.raises(FileNotFoundError, match="checkpoint or preset directory"):
        convert_to_long(str(tmp_path / "missing"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(max_sequence_length=SHORT), f"above the source's {SHORT} positions"),
        (dict(max_sequence_length=16), "Received: max_sequence_length=16"),
        (dict(window=0), "Received: window=0"),
        (dict(window=-3), "Received: window=-3"),
        (dict(window=[8]), r"one per layer\. Received: window=\[8\]"),
        (dict(window=[8, 8.5]), r"Received: window=\[8, 8.5\]"),
        (dict(dilation=0), "dilation"),
    ],
)
def test_bad_arguments_name_themselves(roberta, kwargs, message):
    _, directory = roberta
    with pytest.raises(ValueError, match=message):
        convert_to_long(directory, **{"max_sequence_length": LONG, **kwargs})


def test_a_checkpoint_missing_a_weight_names_it(roberta, tmp_path):
    from safetensors.numpy import load_file
    from safetensors.numpy import save_file

    _, directory = roberta
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(open(os.path.join(directory, "config.json")).read())
    weights = load_file(os.path.join(directory, "model.safetensors"))
    del weights["encoder.layer.1.attention.self.value.weight"]
    save_file(weights, str(broken / "model.safetensors"))
    with pytest.raises(ValueError, match=r"Missing key `encoder\.layer\.1\.attention\.self\.value\.weight`.*broken"):
        convert_to_long(str(broken), max_sequence_length=LONG)


# === The command ===


def test_convert_to_long_command_writes_a_preset_that_equals_the_source(tmp_path, capsys):
    import torch
    from test_cli import assert_one_line_error_in_process
    from test_cli import run_in_process

    source = tmp_path / "roberta-mlm"
    torch_model = random_source("RobertaForMaskedLM", str(source), tokenizer=True, vocab_size=300)
    output = tmp_path / "long"
    status, out, err = run_in_process(
        capsys, "convert-to-long", source, output, "--max-length", LONG, "--window", f"{SHORT},{SHORT}", "--json"
    )
    assert status == 0, err
    assert '"model": "LongformerMaskedLM"' in out
    model = models.LongformerMaskedLM.from_preset(str(output))
    assert model.backbone.max_sequence_length == LONG and model.backbone.window == [SHORT, SHORT]
    ids, padding, glob = hf_fixtures.batch(SHORT, "none")
    with torch.no_grad():
        expected = torch_model(torch.tensor(ids), attention_mask=torch.tensor(padding)).logits.numpy()
    logits = keras.ops.convert_to_numpy(
        model.predict({"token_ids": ids, "padding_mask": padding, "global_mask": glob}, verbose=0)
    )
    assert max_error(logits, expected, padding) <= ATOL
    # Bad input: one line naming the argument, nothing written.
    for args, fragment in (
        (("--max-length", SHORT), f"above the source's {SHORT} positions"),
        (("--window", "0"), "Received: window=0"),
        (("--window", "8,8,8"), "Received: window=[8, 8, 8]"),
    ):
        target = tmp_path / "refused.keras"
        status, _, err = run_in_process(capsys, "convert-to-long", source, target, *args)
        assert_one_line_error_in_process(status, err, fragment)
        assert not target.exists()
    assert sorted(os.listdir(tmp_path)) == ["long", "roberta-mlm"]


def test_an_untied_masked_lm_decoder_is_refused(tmp_path):
    """LongformerMaskedLM ties its decoder to the token embedding: a RoBERTa
    whose decoder differs cannot be converted exactly, and says so."""
    random_source("RobertaForMaskedLM", str(tmp_path), tie_word_embeddings=False, seed=3)
    with pytest.raises(ValueError, match=r"`lm_head\.decoder\.weight` is not tied to `roberta\.embeddings"):
        convert_to_long(str(tmp_path), max_sequence_length=LONG, window=SHORT)
