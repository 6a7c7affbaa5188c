"""The `keras-longformer` command, run as a subprocess.

Each run imports TensorFlow (a few seconds), so the model is exported once
per module and the error cases are kept to the ones the issue names.
"""

import os
import shutil
import subprocess
import sys

import keras
import pytest

import keras_longformer

COMMAND = [sys.executable, "-m", "keras_longformer.cli"]


def run(*args, env=None, timeout=300):
    environment = dict(os.environ, **(env or {}))
    return subprocess.run(
        COMMAND + [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
    )


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if "keras-longformer: error:" in line]
    assert len(errors) == 1, result.stderr
    # Nothing of ours after the error line (native import logs may precede it).
    assert result.stderr.rstrip().splitlines()[-1] == errors[0], result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def build_model():
    keras.utils.set_random_seed(0)
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    padding_mask = keras.Input((None,), dtype="bool", name="padding_mask")
    global_mask = keras.Input((None,), dtype="bool", name="global_mask")
    x = keras.layers.Embedding(40, 8, name="token_embedding")(token_ids)
    x = keras_longformer.LongformerSelfAttention(2, 4, window=2)(
        x, padding_mask=padding_mask, global_mask=global_mask
    )
    outputs = {"sequence_output": keras.layers.Dense(8, name="out")(x)}
    return keras.Model(
        {"token_ids": token_ids, "padding_mask": padding_mask, "global_mask": global_mask},
        outputs,
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cli")
    model_path = directory / "model.keras"
    build_model().save(model_path)
    onnx_path = directory / "model.onnx"
    result = run(
        "export", model_path, onnx_path, "--lengths", "1,3,10",
        env={"KERAS_LONGFORMER_PROGRESS": "1"},
    )
    return model_path, onnx_path, result


def test_export_writes_verifies_and_prints_the_table(exported):
    _, onnx_path, result = exported
    assert result.returncode == 0, result.stdout + result.stderr
    assert onnx_path.is_file()
    assert "Traceback" not in result.stderr
    out = result.stdout
    assert "token_ids" in out and "[batch, sequence]" in out
    assert "sequence_output" in out and "[batch, sequence, 8]" in out
    for length in ("1", "3", "10"):
        assert any(line.split()[:1] == [length] for line in out.splitlines())
    assert "FAIL" not in out
    assert "12 cases, 12 ok" in out
    assert "(verified)" in out
    assert "verifying" in result.stderr  # the progress bar


def test_check_prints_providers_shapes_and_timing(exported):
    _, onnx_path, _ = exported
    result = run("check", onnx_path, "--length", "37", "--batch", "3", "--repeats", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    out = result.stdout
    assert "providers:" in out and "ExecutionProvider" in out
    assert "fed (3, 37)" in out
    assert "-> (3, 37, 8) float32" in out
    assert "median" in out and "ms" in out
    assert "outputs finite: yes" in out


def test_check_cuda_is_clear_either_way(exported):
    from keras_longformer.export.session import cuda_unavailable_reason

    _, onnx_path, _ = exported
    result = run("check", onnx_path, "--provider", "cuda", "--repeats", "1")
    if cuda_unavailable_reason() is None and result.returncode == 0:
        assert "CUDAExecutionProvider" in result.stdout
    else:
        assert_one_line_error(result, "CUDA is not available")


def test_existing_output_without_force(exported):
    model_path, onnx_path, _ = exported
    before = onnx_path.read_bytes()
    result = run("export", model_path, onnx_path, "--no-verify")
    assert_one_line_error(result, "already exists", "--force")
    assert onnx_path.read_bytes() == before


def test_force_and_no_verify(exported, tmp_path):
    model_path, _, _ = exported
    target = tmp_path / "again.onnx"
    target.write_bytes(b"old")
    result = run("export", model_path, target, "--force", "--no-verify", "--opset", "18")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "NOT verified" in result.stdout and "opset 18" in result.stdout
    assert target.read_bytes() != b"old"
    assert sorted(os.listdir(tmp_path)) == ["again.onnx"]


@pytest.mark.parametrize(
    "case",
    ["missing input", "not a keras model", "missing output directory", "bad opset", "bad lengths"],
)
def test_errors_are_one_line(exported, tmp_path, case):
    model_path, _, _ = exported
    output = tmp_path / "out.onnx"
    if case == "missing input":
        result = run("export", tmp_path / "absent.keras", output)
        fragments = ["no such file", "absent.keras"]
    elif case == "not a keras model":
        text = tmp_path / "notes.txt"
        text.write_text("hello")
        result = run("export", text, output)
        fragments = ["not a Keras model"]
    elif case == "missing output directory":
        result = run("export", model_path, tmp_path / "nowhere" / "out.onnx")
        fragments = ["output directory does not exist"]
    elif case == "bad opset":
        result = run("export", model_path, output, "--opset", "21")
        fragments = ["opset", "18"]
    else:
        result = run("export", model_path, output, "--lengths", "0,x")
        assert result.returncode == 2  # argparse usage error
        assert "Traceback" not in result.stderr and "--lengths" in result.stderr
        return
    assert_one_line_error(result, *fragments)
    assert not output.exists()


def test_check_errors_are_one_line(tmp_path):
    result = run("check", tmp_path / "absent.onnx")
    assert_one_line_error(result, "no such file")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not onnx")
    result = run("check", garbage)
    assert_one_line_error(result, "cannot load")


def test_help_and_console_script():
    result = run("--help")
    assert result.returncode == 0
    for command in ("export", "check", "convert"):
        assert command in result.stdout
    script = shutil.which("keras-longformer")
    assert script is not None, "the keras-longformer console script is not on PATH"
    result = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and keras_longformer.__version__ in result.stdout


def test_convert_errors_are_one_line(tmp_path):
    result = run("convert", tmp_path / "no-checkpoint", tmp_path / "out.keras")
    assert_one_line_error(result, "not a checkpoint directory")
    result = run("convert", tmp_path, tmp_path / "out.onnx")
    assert_one_line_error(result, ".keras")


def test_exported_file_runs_in_a_fresh_process(exported):
    # The artifact is standalone: onnxruntime alone, no Keras, no package.
    _, onnx_path, _ = exported
    code = (
        "import sys, numpy as np, onnxruntime as ort\n"
        "s = ort.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider'])\n"
        "n = 29\n"
        "feeds = {'token_ids': np.arange(2 * n, dtype='int32').reshape(2, n) % 40,\n"
        "         'padding_mask': np.ones((2, n), bool), 'global_mask': np.eye(2, n, dtype=bool)}\n"
        "print(s.run(None, feeds)[0].shape)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(onnx_path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "(2, 29, 8)" in result.stdout


def test_convert_huggingface_checkpoint(tmp_path):
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.LongformerConfig(
        vocab_size=60, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16, attention_window=[4], max_position_embeddings=70, pad_token_id=1,
    )
    transformers.LongformerModel(config).save_pretrained(tmp_path / "hf")
    target = tmp_path / "converted.keras"
    result = run("convert", tmp_path / "hf", target)
    assert result.returncode == 0, result.stdout + result.stderr
    assert target.is_file() and "LongformerBackbone" in result.stdout
    assert sorted(os.listdir(tmp_path)) == ["converted.keras", "hf"]
    result = run("convert", tmp_path / "hf", target)
    assert_one_line_error(result, "already exists")


def test_serving_example_runs(tmp_path):
    example = os.path.join(os.path.dirname(__file__), os.pardir, "examples", "serve_onnx.py")
    model_path = tmp_path / "model.keras"
    build_model().save(model_path)
    result = subprocess.run(
        [sys.executable, example, "--model", model_path, "--lengths", "5,70",
         "--batch", "3", "--repeats", "1", "--provider", "cpu"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "CPUExecutionProvider" in result.stdout
    assert "max abs error" in result.stdout
