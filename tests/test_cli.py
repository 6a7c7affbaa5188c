"""The `keras-longformer` command, as a subprocess and in this process.

Each subprocess imports TensorFlow (a few seconds), so the model is
exported once per module, and the many error and report cases run
`cli.main` in this process instead.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_longformer
from keras_longformer import cli
from helpers import HAS_GPU

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


def test_check_cuda_is_clear_either_way(exported, capsys):
    # Which outcome is right is decided by the machine (an NVIDIA device
    # node), never by asking the code under test.
    _, onnx_path, _ = exported
    status, out, err = run_in_process(capsys, "check", onnx_path, "--provider", "cuda", "--repeats", "1")
    if status == 0:
        assert HAS_GPU, out
        assert "providers: CUDAExecutionProvider" in out
    else:
        assert not HAS_GPU, f"a GPU is present but the CUDA provider did not come up: {err}"
        assert_one_line_error_in_process(status, err, "CUDA is not available")


def run_in_process(capsys, *args):
    """`cli.main` in this process (no TensorFlow start-up per case);
    `--verbose` leaves file descriptor 2 alone so that capsys sees stderr."""
    status = cli.main(["--verbose", *[str(a) for a in args]])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error_in_process(status, err, *fragments):
    assert status == 1, err
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("keras-longformer: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def test_existing_output_without_force(exported, capsys):
    model_path, onnx_path, _ = exported
    before = onnx_path.read_bytes()
    status, _, err = run_in_process(capsys, "export", model_path, onnx_path, "--no-verify")
    assert_one_line_error_in_process(status, err, "already exists", "--force")
    assert onnx_path.read_bytes() == before


def test_force_and_no_verify(exported, tmp_path):
    model_path, _, _ = exported
    target = tmp_path / "again.onnx"
    target.write_bytes(b"old")
    result = run("export", model_path, target, "--force", "--no-verify", "--opset", "18", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)  # stdout is the JSON report and nothing else
    assert report["command"] == "export" and report["ok"] is True
    assert report["path"] == str(target) and report["verified"] is False
    assert report["report"]["opset"] == 18
    assert set(report["report"]["inputs"]) == {"token_ids", "padding_mask", "global_mask"}
    assert target.read_bytes() != b"old"
    assert sorted(os.listdir(tmp_path)) == ["again.onnx"]


def test_an_error_in_a_fresh_process_is_its_last_line(tmp_path):
    """In a process of its own, TensorFlow's native start-up logs may come
    first; the error is still one line, the last, without a traceback."""
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    output = tmp_path / "out.onnx"
    assert_one_line_error(run("export", text, output), "not a Keras model")
    assert not output.exists()


@pytest.mark.parametrize(
    "case",
    # "not a Keras model" runs in a process of its own (above).
    ["missing input", "missing output directory", "bad opset"],
)
def test_errors_are_one_line(exported, tmp_path, capsys, case):
    model_path, _, _ = exported
    output = tmp_path / "out.onnx"
    if case == "missing input":
        arguments = ["export", tmp_path / "absent.keras", output]
        fragments = ["no such file", "absent.keras"]
    elif case == "missing output directory":
        arguments = ["export", model_path, tmp_path / "nowhere" / "out.onnx"]
        fragments = ["output directory does not exist"]
    else:
        arguments = ["export", model_path, output, "--opset", "21"]
        fragments = ["opset", "18"]
    status, _, err = run_in_process(capsys, *arguments)
    assert_one_line_error_in_process(status, err, *fragments)
    assert not output.exists()


def test_bad_lengths_are_a_usage_error(exported, tmp_path, capsys):
    model_path, _, _ = exported
    with pytest.raises(SystemExit) as exit_:
        cli.main(["export", str(model_path), str(tmp_path / "out.onnx"), "--lengths", "0,x"])
    assert exit_.value.code == 2  # argparse's usage error
    assert "--lengths" in capsys.readouterr().err
    assert not (tmp_path / "out.onnx").exists()


def test_check_errors_are_one_line(tmp_path, capsys):
    status, _, err = run_in_process(capsys, "check", tmp_path / "absent.onnx")
    assert_one_line_error_in_process(status, err, "no such file")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not onnx")
    status, _, err = run_in_process(capsys, "check", garbage)
    assert_one_line_error_in_process(status, err, "cannot load")


def test_help_and_console_script():
    """The installed console script (`python -m keras_longformer.cli` runs in
    the other subprocess tests, `--version` in this process)."""
    script = shutil.which("keras-longformer")
    assert script is not None, "the keras-longformer console script is not on PATH"
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for command in ("export", "check", "convert", "bench", "triton", "serve-bench"):
        assert command in result.stdout


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


# === Every command: --quiet, --json, help on every option, honest when unavailable ===


def subcommands(parser):
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return action.choices


def test_every_command_has_quiet_json_and_help_for_every_option():
    commands = subcommands(cli.build_parser())
    assert {"export", "check", "convert", "bench", "triton", "serve-bench"} <= set(commands)
    for name, parser in commands.items():
        options = {flag for action in parser._actions for flag in action.option_strings}
        assert {"--quiet", "--json"} <= options, (name, sorted(options))
        for action in parser._actions:
            label = f"{name} {'/'.join(action.option_strings) or action.dest}"
            assert action.help and action.help != argparse.SUPPRESS, f"{label} has no help text"
            assert "unavailable" not in action.help, label


def test_version_is_argparses_version_action(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"keras-longformer {keras_longformer.__version__}\n"


def test_a_command_whose_import_fails_says_so(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "keras_longformer.bench", None)
    monkeypatch.delattr(keras_longformer, "bench", raising=False)
    assert "bench" in subcommands(cli.build_parser())
    status, out, err = run_in_process(capsys, "bench", "--lengths", "64")
    assert_one_line_error_in_process(status, err, "the bench command is unavailable", "keras_longformer.bench")
    assert out == ""


def test_check_json_and_quiet(exported, capsys):
    import onnxruntime

    _, onnx_path, _ = exported
    status, out, err = run_in_process(
        capsys, "check", onnx_path, "--length", "37", "--batch", "3", "--repeats", "2", "--json"
    )
    assert status == 0, err
    report = json.loads(out)
    assert report["command"] == "check" and report["ok"] is True
    # Shapes as onnxruntime itself gives them for the same feed sizes.
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feeds = {
        "token_ids": np.ones((3, 37), "int32"),
        "padding_mask": np.ones((3, 37), bool),
        "global_mask": np.zeros((3, 37), bool),
    }
    (expected,) = session.run(None, feeds)
    assert report["outputs"]["sequence_output"]["shape"] == list(expected.shape)
    assert report["inputs"]["token_ids"]["fed"] == [3, 37]
    assert report["providers"][0] == "CPUExecutionProvider" and report["finite"] is True
    seconds = report["seconds"]
    assert seconds["repeats"] == 2 and 0 < seconds["min"] <= seconds["median"] <= seconds["p90"]

    status, out, err = run_in_process(capsys, "check", onnx_path, "--repeats", "1", "--quiet")
    assert status == 0, err
    assert out == ""


def with_max_length(onnx_path, target, max_length):
    """A copy of an exported file whose metadata says `max_length`."""
    import onnx

    model = onnx.load(str(onnx_path))
    entry = model.metadata_props.add()
    entry.key, entry.value = "keras_longformer.max_sequence_length", str(max_length)
    onnx.save(model, str(target))
    return target


def test_check_refuses_bad_sizes_before_any_work(exported, tmp_path, capsys):
    _, onnx_path, _ = exported
    # The size is refused before the (missing) file is even looked at.
    status, _, err = run_in_process(capsys, "check", tmp_path / "absent.onnx", "--batch", "0")
    assert_one_line_error_in_process(status, err, "--batch must be an int >= 1", "Received: --batch 0")
    short = with_max_length(onnx_path, tmp_path / "short.onnx", 16)
    status, out, err = run_in_process(capsys, "check", short, "--length", "17", "--json")
    assert_one_line_error_in_process(status, err, "--length 17 exceeds the max_sequence_length 16")
    assert json.loads(out)["ok"] is False
    status, out, err = run_in_process(capsys, "check", short, "--length", "16", "--repeats", "1")
    assert status == 0, err
    assert "fed (2, 16)" in out
