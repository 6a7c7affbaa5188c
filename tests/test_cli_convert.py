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
    transformers.LongformerForMaskedLM(config).save_pretrained(tmp_path / "hf")
    target = tmp_path / "converted.keras"
    result = run("convert", tmp_path / "hf", target, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["model"] == "LongformerBackbone"
    assert report["path"] == str(target) and target.is_file()
    warnings = [line for line in result.stderr.splitlines() if "keras-longformer: warning:" in line]
    assert any("pooler" in line and "UserWarning" in line for line in warnings), result.stderr
    assert sorted(os.listdir(tmp_path)) == ["converted.keras", "hf"]
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
