"""The LED pair (encoder.onnx, decoder.onnx with a cache): a converted Hugging Face
LED exported and verified; greedy generation in onnxruntime alone equal, token for
token, to Keras's `generate`; both graphs run by ONNX's own reference evaluator;
a Triton repository for the pair; refusals that leave nothing on disk."""

import json
import os

import keras
import numpy as np
import pytest
import torch
from onnx.reference import ReferenceEvaluator
from transformers import LEDForConditionalGeneration

from keras_longformer.convert.led import led_from_huggingface
from keras_longformer.export import ExportError
from keras_longformer.export import LEDOnnxGenerator
from keras_longformer.export import export_led_onnx
from keras_longformer.export import write_led_triton_repository
from keras_longformer.export import led as led_export
from keras_longformer.models import LEDBackbone
from keras_longformer.models import LEDSeq2SeqLM
from test_led_huggingface import features
from test_led_huggingface import hf_led

START, END, PAD = 2, 2, 1  # Hugging Face LED's decoder start, end and pad


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("led_pair")
    model, directory = hf_led(root, (4, 8), cls=LEDForConditionalGeneration, seed=3)
    with torch.no_grad():
        model.final_logits_bias.normal_(0, 0.5)
    model.save_pretrained(directory)
    lm = led_from_huggingface(directory, task="seq2seq_lm")
    report = export_led_onnx(lm, root / "pair", lengths=[1, 8, 9, 17, 70], new_tokens=5)
    return lm, report


def keras_greedy(lm, ids, padding, global_mask, max_length):
    prompt = np.full((len(ids), max_length), PAD, "int32")
    prompt[:, 0] = START
    lm.compile(sampler="greedy")
    out = lm.generate({
        "encoder_token_ids": ids.astype("int32"), "encoder_padding_mask": padding.astype("int32"),
        "encoder_global_mask": global_mask.astype("int32"), "decoder_token_ids": prompt,
        "decoder_padding_mask": np.arange(max_length)[None].repeat(len(ids), 0) < 1,
    }, stop_token_ids=[END])
    tokens, mask = np.asarray(out["decoder_token_ids"]), np.asarray(out["decoder_padding_mask"]).astype(bool)
    return [tokens[row][mask[row]] for row in range(len(ids))]


def test_the_pair_is_verified_at_every_length_and_pattern(exported):
    lm, report = exported
    assert report.verified
    assert sorted({(row.length, row.pattern) for row in report.rows}) == sorted(
        (length, pattern) for length in (1, 8, 9, 17, 70) for pattern in ("none", "first", "many"))
    assert sorted(os.listdir(report.directory)) == ["decoder.onnx", "encoder.onnx", "generation.json"]
    with open(os.path.join(report.directory, "generation.json")) as handle:
        generation = json.load(handle)
    assert generation["decoder_prompt"] == [START] and generation["end_token_id"] == END
    assert generation["max_decoder_sequence_length"] == 32


@pytest.mark.parametrize("length, global_positions", [(5, ()), (40, (0,)), (90, (0, 3, 50))])
def test_onnxruntime_greedy_generation_equals_keras_generate(exported, length, global_positions):
    lm, report = exported
    ids, padding, global_mask, _ = features(length, 1, global_positions, padded_row=True, seed=length)
    generator = LEDOnnxGenerator(report.directory, provider="cpu")
    tokens = generator.generate(ids, padding, global_mask, max_length=20)
    expected = keras_greedy(lm, ids, padding, global_mask, 20)
    for row in range(len(ids)):
        ours = tokens[row]
        stop = next((i + 1 for i, t in enumerate(ours[1:], 1) if t == END), len(ours))
        np.testing.assert_array_equal(ours[:stop], expected[row])
        assert (ours[stop:] == PAD).all()


def test_onnx_reference_evaluator_runs_both_graphs_like_keras(exported):
    """ONNX's own evaluator (standard ONNX, not only what onnxruntime accepts)."""
    lm, report = exported
    ids, padding, global_mask, _ = features(19, 1, (0, 6), padded_row=True, seed=7)
    feeds = {"encoder_token_ids": ids.astype("int32"), "encoder_padding_mask": padding.astype("int32"),
             "encoder_global_mask": global_mask.astype("int32")}
    encoder = ReferenceEvaluator(os.path.join(report.directory, "encoder.onnx"))
    hidden, cross_cache = encoder.run(["encoder_hidden_states", "cross_attention_cache"], feeds)
    expected_hidden = keras.ops.convert_to_numpy(lm.call_encoder(ids, padding, global_mask))
    real = padding.astype(bool)
    assert np.max(np.abs(hidden[real] - expected_hidden[real])) <= 1e-4
    decoder = ReferenceEvaluator(os.path.join(report.directory, "decoder.onnx"))
    batch_size, layers, _, heads, _, head_dim = cross_cache.shape
    self_cache = np.zeros((batch_size, layers, 2, 6, heads, head_dim), "float32")
    prompt = np.array([[START, 17, 23]] * 2, "int32")
    (logits,) = decoder.run(["logits"], {
        "decoder_token_ids": prompt, "encoder_padding_mask": feeds["encoder_padding_mask"],
        "self_attention_cache": self_cache, "cross_attention_cache": cross_cache,
        "cache_update_index": np.array([0], "int32"),
    })
    expected = keras.ops.convert_to_numpy(lm({**feeds, "decoder_token_ids": prompt,
                                              "decoder_padding_mask": np.ones_like(prompt)}))
    assert np.max(np.abs(logits - expected)) <= 1e-4


def test_triton_repository_for_the_pair(exported, tmp_path):
    _, report = exported
    encoder_dir, decoder_dir = write_led_triton_repository(report.directory, tmp_path / "models")
    assert (os.path.basename(encoder_dir), os.path.basename(decoder_dir)) == ("led_encoder", "led_decoder")
    encoder_config = open(os.path.join(encoder_dir, "config.pbtxt")).read()
    decoder_config = open(os.path.join(decoder_dir, "config.pbtxt")).read()
    assert "max_batch_size: 8" in encoder_config and "dynamic_batching" in encoder_config
    assert "max_batch_size: 0" in decoder_config and "dynamic_batching" not in decoder_config
    assert 'name: "cache_update_index"' in decoder_config
    for model_dir in (encoder_dir, decoder_dir):
        assert os.path.isfile(os.path.join(model_dir, "1", "model.onnx"))


def small_lm():
    keras.utils.set_random_seed(0)
    return LEDSeq2SeqLM(LEDBackbone(vocabulary_size=30, num_layers=1, num_heads=2, hidden_dim=8,
                                    intermediate_dim=16, window=2, max_encoder_sequence_length=16,
                                    max_decoder_sequence_length=8))


def test_refusals_before_any_work_leave_nothing(tmp_path):
    lm = small_lm()
    existing = tmp_path / "pair"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite"):
        export_led_onnx(lm, existing)
    assert os.listdir(existing) == ["keep.txt"]
    with pytest.raises(ValueError, match=r"lengths.*max_encoder_sequence_length=16.*Received: lengths=\[17\]"):
        export_led_onnx(lm, tmp_path / "new", lengths=[17])
    with pytest.raises(TypeError, match="LEDSeq2SeqLM.*Received: LEDBackbone"):
        export_led_onnx(lm.backbone, tmp_path / "new")
    with pytest.raises(FileNotFoundError, match="parent"):
        export_led_onnx(lm, tmp_path / "missing" / "pair")
    assert sorted(os.listdir(tmp_path)) == ["pair"]


def test_a_failed_verification_writes_nothing_and_keeps_the_old_export(tmp_path, monkeypatch):
    lm = small_lm()
    target = tmp_path / "pair"
    first = export_led_onnx(lm, target, lengths=[3])
    before = {name: (target / name).read_bytes() for name in os.listdir(target)}
    monkeypatch.setattr(led_export, "TOLERANCE", -1.0)  # no error is that small: every case fails
    with pytest.raises(ExportError, match="differs from Keras in 3 of 3 cases"):
        export_led_onnx(lm, target, lengths=[3], overwrite=True)
    assert first.verified
    assert {name: (target / name).read_bytes() for name in os.listdir(target)} == before
    assert sorted(os.listdir(tmp_path)) == ["pair"]


def test_generator_refuses_a_max_length_past_the_decoder_positions(tmp_path):
    report = export_led_onnx(small_lm(), tmp_path / "pair", verify=False)
    generator = LEDOnnxGenerator(report.directory, provider="cpu")
    ids = np.full((1, 5), 7, "int32")
    with pytest.raises(ValueError, match="max_decoder_sequence_length=8. Received: max_length=9"):
        generator.generate(ids, np.ones_like(ids), max_length=9)


def test_summarize_onnx_example_writes_a_pair_that_summarizes_as_keras(tmp_path, capsys):
    """examples/summarize_onnx.py end to end; then its files, checked here
    directly (not through the example's own comparison)."""
    from helpers import load_example

    example = load_example("summarize_onnx")
    argv = ["--out", str(tmp_path / "pair"), "--length", "90", "--max-length", "10", "--provider", "cpu",
            "--verify-lengths", "1,33,90"]
    example.main(argv)
    assert "equal Keras's, token for token (18 generated tokens)" in capsys.readouterr().out
    lm = example.load_model(None)  # the same seeded model
    ids, padding, global_mask = example.documents(lm, example.parse_args(argv))
    tokens, logits = LEDOnnxGenerator(tmp_path / "pair", provider="cpu").generate(
        ids, padding, global_mask, max_length=10, stop_token_ids=(), return_logits=True)
    # A random LED repeats one token, so its logits are compared too: each
    # step's against Keras's uncached forward pass over the same tokens.
    expected_logits = keras.ops.convert_to_numpy(lm({
        "encoder_token_ids": ids, "encoder_padding_mask": padding, "encoder_global_mask": global_mask,
        "decoder_token_ids": tokens[:, :-1], "decoder_padding_mask": np.ones_like(tokens[:, :-1])}))
    assert np.max(np.abs(logits - expected_logits)) <= 1e-4
    prompt = np.full((2, 10), PAD, "int32")
    prompt[:, 0] = START
    lm.compile(sampler="greedy")
    expected = lm.generate({"encoder_token_ids": ids, "encoder_padding_mask": padding,
                            "encoder_global_mask": global_mask, "decoder_token_ids": prompt,
                            "decoder_padding_mask": np.arange(10)[None].repeat(2, 0) < 1}, stop_token_ids=None)
    np.testing.assert_array_equal(tokens, np.asarray(expected["decoder_token_ids"]))
