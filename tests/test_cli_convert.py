"""`keras-longformer convert`: a Hugging Face checkpoint directory to `.keras`.

One conversion runs as a subprocess (the console command a user types, its
warnings on stderr); the error cases run `cli.main` in this process.
"""

import json
import os

import numpy as np
import pytest

from keras_longformer import cli
from test_cli import assert_one_line_error_in_process
from test_cli import run
from test_cli import run_in_process


def broken_checkpoints(directory):
    """Checkpoint directories a user really has: each should fail in one line."""
    import hf_fixtures
    from safetensors.numpy import save_file

    config = hf_fixtures.hf_config().to_json_string()
    cases = {}
    for name, config_text, weights in (
        ("bad_json", config[:-10], None),
        ("not_longformer", config.replace('"longformer"', '"bert"'), None),
        ("truncated", config, "truncated"),
    ):
        path = directory / name
        path.mkdir()
        (path / "config.json").write_text(config_text)
        save_file({"embeddings.word_embeddings.weight": np.zeros((61, 16), "float32")},
                  str(path / "model.safetensors"))
        if weights == "truncated":
            data = (path / "model.safetensors").read_bytes()
            (path / "model.safetensors").write_bytes(data[: len(data) - 7])
        cases[name] = path
    return cases


def test_convert_errors_are_one_line(tmp_path, capsys):
    status, _, err = run_in_process(capsys, "convert", tmp_path / "no-checkpoint", tmp_path / "out.keras")
    assert_one_line_error_in_process(status, err, "not a checkpoint directory")
    status, _, err = run_in_process(capsys, "convert", tmp_path, tmp_path / "out.keras")
    assert_one_line_error_in_process(status, err, "No config.json")
    expected = {
        "bad_json": ["config.json is not valid JSON"],
        "not_longformer": ["config.json", "model_type='bert'"],
        "truncated": ["model.safetensors is not a readable safetensors file", "truncated"],
    }
    for name, path in broken_checkpoints(tmp_path).items():
        target = tmp_path / f"{name}.keras"
        status, out, err = run_in_process(capsys, "convert", path, target, "--json")
        assert_one_line_error_in_process(status, err, *expected[name])
        report = json.loads(out)
        assert report["command"] == "convert" and report["ok"] is False
        assert report["error"] == err.strip().splitlines()[-1].removeprefix("keras-longformer: error: ")
        assert not target.exists()
        assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".keras") == []


def test_convert_huggingface_checkpoint(tmp_path, capsys):
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.LongformerConfig(
        vocab_size=60, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16, attention_window=[4], max_position_embeddings=70, pad_token_id=1,
    )
    # A head checkpoint converted to a backbone: its pooler is random, and
    # the command must say so (Python warnings are never silenced).
    hf = transformers.LongformerForMaskedLM(config).eval()
    hf.save_pretrained(tmp_path / "hf")
    target = tmp_path / "converted.keras"
    result = run("convert", tmp_path / "hf", target, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["model"] == "LongformerBackbone"
    assert report["path"] == str(target) and target.is_file()
    warnings = [line for line in result.stderr.splitlines() if "keras-longformer: warning:" in line]
    assert any("pooler" in line and "UserWarning" in line for line in warnings), result.stderr
    assert sorted(os.listdir(tmp_path)) == ["converted.keras", "hf"]
    # The numbers are Hugging Face's: the file's encoder output against PyTorch's.
    import keras

    # 24 tokens, a multiple of the window: Hugging Face pads silently (no log record).
    ids = np.random.default_rng(0).integers(3, 60, (2, 24))
    ids[1, 17:] = 1
    padding, glob = ids != 1, np.zeros_like(ids)
    glob[:, 0] = 1
    with torch.no_grad():
        expected = hf.longformer(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(padding.astype("int64")),
                                 global_attention_mask=torch.from_numpy(glob)).last_hidden_state.numpy()
    backbone = keras.saving.load_model(target)
    actual = keras.ops.convert_to_numpy(backbone({"token_ids": ids, "padding_mask": padding, "global_mask": glob})["sequence_output"])
    assert np.max(np.abs(actual[padding] - expected[padding])) <= 1e-5
    status, _, err = run_in_process(capsys, "convert", tmp_path / "hf", target)
    assert_one_line_error_in_process(status, err, "already exists")


def test_convert_task_lists_and_enforces_its_choices(tmp_path, capsys):
    from keras_longformer.convert import TASKS

    with pytest.raises(SystemExit) as info:
        cli.main(["convert", "--help"])
    assert info.value.code == 0
    assert "{" + ",".join(TASKS) + "}" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        cli.main(["convert", str(tmp_path), str(tmp_path / "out.keras"), "--task", "summarize"])
    assert info.value.code == 2
    assert "invalid choice: 'summarize'" in capsys.readouterr().err


def test_convert_an_led_checkpoint_with_its_tokenizer_to_a_preset(tmp_path):
    """An LEDForConditionalGeneration directory with BPE files: `--task auto`
    writes an LEDSeq2SeqLM preset with its preprocessor, whose logits are
    Hugging Face's."""
    import keras
    import torch
    import transformers

    from bpe_fixtures import train_bpe
    from keras_longformer.models import LEDSeq2SeqLM

    torch.manual_seed(0)
    source = tmp_path / "led"
    train_bpe(str(source), vocab_size=300)
    config = transformers.LEDConfig(
        vocab_size=300, d_model=8, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=16, decoder_ffn_dim=16, attention_window=[4],
        max_encoder_position_embeddings=64, max_decoder_position_embeddings=16,
    )
    hf = transformers.LEDForConditionalGeneration(config).eval()
    hf.save_pretrained(source)
    target = tmp_path / "led_preset"
    result = run("convert", source, target, "--task", "auto", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["model"] == "LEDSeq2SeqLM"
    lm = LEDSeq2SeqLM.from_preset(str(target))
    assert lm.preprocessor is not None and lm.preprocessor.encoder_sequence_length == 64
    x, _, _ = lm.preprocessor({"encoder_text": ["a short document"], "decoder_text": ["a summary"]})
    ids = {key: keras.ops.convert_to_numpy(value).astype("int64") for key, value in x.items()}
    with torch.no_grad():
        expected = hf(
            input_ids=torch.from_numpy(ids["encoder_token_ids"]),
            attention_mask=torch.from_numpy(ids["encoder_padding_mask"]),
            global_attention_mask=torch.from_numpy(ids["encoder_global_mask"]),
            decoder_input_ids=torch.from_numpy(ids["decoder_token_ids"]),
            decoder_attention_mask=torch.from_numpy(ids["decoder_padding_mask"]),
        ).logits.numpy()
    logits = keras.ops.convert_to_numpy(lm(x))
    real = ids["decoder_padding_mask"].astype(bool)
    assert np.max(np.abs(logits[real] - expected[real])) <= 1e-4
