"""`keras-longformer bench`: a quick run writes its JSON and plots with every
path timed or skipped with a reason; the FLOP count, the plan and the
failure handling checked on their own. No timed assertions."""

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_longformer.bench import memory
from keras_longformer.bench import parse_options
from keras_longformer.bench import runner
from keras_longformer.bench.cli import add_arguments
from keras_longformer.bench.cli import options_command
from keras_longformer.bench.flops import band_pairs
from keras_longformer.bench.flops import useful_flops
from keras_longformer.bench.paths import PATHS
from keras_longformer.bench.report import merge_rounds

SMALL = dict(hidden=32, heads=2, window=16, batch=1, num_global=2)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def options(*argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parse_options(parser.parse_args(list(argv)))


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("bench")
    result = subprocess.run(
        [sys.executable, "-m", "keras_longformer.cli", "bench", "--quick",
         "--hidden", "32", "--heads", "2", "--window", "16", "--lengths", "64",
         "--output-dir", str(output_dir)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return output_dir, result


def test_quick_run_writes_json_and_plots(quick_run):
    output_dir, result = quick_run
    for name in ("time_vs_length.png", "memory_vs_length.png"):
        with open(output_dir / name, "rb") as handle:
            assert handle.read(8) == PNG_MAGIC
    report = json.loads((output_dir / "bench.json").read_text())
    assert report["quick"] is True
    for dtype in ("float32", "bfloat16"):
        assert report["matmul_rates"][dtype]["flops_per_second"] > 0
    assert report["export"]["max_abs_error"] <= 1e-4
    # onnxruntime's own matmul rate, on the provider the exported layer gets.
    runtime_rate = report["onnxruntime_matmul_rate"]
    assert runtime_rate["flops_per_second"] > 0, report["onnxruntime_matmul_rate_error"]
    assert runtime_rate["provider"] in ("CPUExecutionProvider", "CUDAExecutionProvider")
    exported = next(row for row in report["rows"] if row["path"] == "ours_onnxruntime_forward")
    assert exported["fraction_of_runtime_limit"] > 0
    assert f"{exported['fraction_of_runtime_limit']:>9.0%}" in next(
        line for line in result.stdout.splitlines() if "ours_onnxruntime_forward" in line
    )
    assert "ours_float32_forward" in result.stdout  # the table
    ours = next(row for row in report["rows"] if row["path"] == "ours_float32_forward")
    markdown = (output_dir / "bench.md").read_text()
    assert report["command"] in markdown.splitlines()[0]
    assert f"| 64 | {ours['seconds']:.3g} s ({ours['fraction_of_limit']:.0%}) |" in markdown


def test_quick_run_has_every_path_timed_or_skipped_with_a_reason(quick_run):
    output_dir, _ = quick_run
    rows = json.loads((output_dir / "bench.json").read_text())["rows"]
    by_path = {row["path"]: row for row in rows if row["length"] == 64}
    assert set(by_path) == {path.name for path in PATHS}
    for name, row in by_path.items():
        if "skipped" in row:
            assert row["skipped"].strip(), name
            continue
        assert row["seconds"] > 0 and len(row["times"]) == 2, name
        assert row["peak_rss_mib"] > 0 and row["memory_isolated"] is False, name
        assert row["fraction_of_limit"] > 0, name
    # Our float32 layer must run; the rest are compared with it.
    for name in ("ours_float32_forward", "ours_float32_train", "ours_generate"):
        assert "seconds" in by_path[name], by_path[name]
    assert by_path["keras_mha_forward"]["time_vs_ours"] > 0
    generate = by_path["ours_generate"]
    assert generate["tokens_per_second"] == pytest.approx(1 / generate["seconds"])  # batch 1


def test_the_timed_token_is_the_full_forward_pass_s_next_token():
    """The generation point times real generation: its logits are those of
    a full forward pass at the same position."""
    import keras

    from keras_longformer.bench import generation

    config = dict(batch=2, hidden=16, heads=2, window=4)
    length = 12
    model = generation.build_causal_lm(config, length)
    token_ids = np.random.default_rng(1).integers(3, generation.VOCABULARY, (2, length)).astype("int32")
    call, _ = generation.cached_step(model, token_ids)
    cached = keras.ops.convert_to_numpy(call())
    features = {
        "token_ids": token_ids,
        "padding_mask": np.ones_like(token_ids),
        "global_mask": np.zeros_like(token_ids),
    }
    full = keras.ops.convert_to_numpy(model(features))[:, length - 2]
    assert np.max(np.abs(cached - full)) <= 1e-4


def test_band_pairs_counts_the_band_exactly():
    for length, window in [(1, 0), (1, 5), (7, 2), (10, 3), (5, 9)]:
        brute = sum(
            1 for i in range(length) for j in range(length) if abs(i - j) <= window
        )
        assert band_pairs(length, window) == brute


def test_useful_flops_of_the_benchmark_layer():
    T, D, w, G = 4096, 768, 256, 2
    expected = (
        6 * 2 * T * D * D  # q, k, v, output, global k and v
        + 2 * G * D * D  # global queries on the global rows
        + 4 * (T * (2 * w + 1) - w * (w + 1)) * D  # band, two matmuls
        + 4 * G * T * D  # global rows
        + 4 * (T - G) * G * D  # global columns
    )
    flops = useful_flops(length=T, hidden=D, heads=12, head_dim=64, window=w, num_global=G)
    assert flops == expected
    no_global = useful_flops(length=T, hidden=D, heads=12, head_dim=64, window=w, num_global=0)
    assert no_global == 4 * 2 * T * D * D + 4 * (T * (2 * w + 1) - w * (w + 1)) * D


def test_plan_stops_peers_at_their_length_and_skips_off_block_lengths():
    names = [path.name for path in PATHS]
    points, skipped = runner.plan(SMALL, [40, 64, 128], names, peer_max_length=64)
    planned = {(p["path"], p["length"]) for p in points}
    assert ("ours_float32_forward", 128) in planned
    assert not any(length == 128 and not name.startswith("ours") for name, length in planned)
    assert {(row["path"], row["length"]) for row in skipped} == {
        ("hf_torch_forward", 40), ("hf_torch_train", 40)
    }
    assert all("multiple of its attention_window 32" in row["skipped"] for row in skipped)


def test_a_point_that_would_not_fit_is_skipped_with_the_estimate(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 8 * 1024**3)
    config = dict(hidden=768, heads=12, window=256, batch=1, num_global=2)
    reason = runner.memory_check(dict(path="keras_mha_forward", length=65536), config)
    assert "estimated peak memory" in reason and "8.0 GiB available" in reason
    assert runner.memory_check(dict(path="ours_float32_forward", length=4096), config) is None


def test_a_point_predicted_too_long_is_skipped_with_the_estimate():
    done = [dict(path="keras_mha_forward", length=2048, seconds=10.0),
            dict(path="hf_torch_forward", length=2048, seconds=10.0)]
    reason = runner.time_check(dict(path="keras_mha_forward", length=8192), done, 6, 900)
    assert reason == (
        "estimated 160 s per call from 2048 tokens: 6 calls exceed --max-point-seconds 900"
    )
    assert runner.time_check(dict(path="hf_torch_forward", length=8192), done, 6, 900) is None
    assert runner.time_check(dict(path="ours_float32_forward", length=8192), done, 6, 900) is None


def test_a_worker_that_dies_leaves_skipped_rows():
    class Bar:
        def update(self, n):
            pass

        def set_postfix_str(self, text):
            pass

    point = dict(path="ours_float32_forward", length=64)
    rows, setup = runner.run_points(
        [point], SMALL, backend="tensorflow", isolated=True, repeats=1, warmup=1,
        setup=None, onnx_path=None, timeout=0.5, progress=Bar(),
    )
    assert rows == [dict(point, skipped="worker timed out after 0.5 s")]
    assert setup == {}


def test_rounds_report_the_median_of_their_medians():
    def row(seconds, peak, **extra):
        return dict(path="ours_float32_forward", length=4096, seconds=seconds, times=[seconds],
                    cpu_seconds=2 * seconds, peak_rss_mib=peak, added_rss_mib=peak - 100, **extra)

    skipped = dict(path="hf_torch_forward", length=4096, skipped="no torch")
    rounds = [[row(0.40, 400), skipped], [row(0.30, 420), dict(skipped)],
              [dict(path="ours_float32_forward", length=4096, skipped="worker died"),
               dict(skipped)],
              [row(0.50, 410), dict(skipped)]]
    merged = {r["path"]: r for r in merge_rounds(rounds)}
    ours = merged["ours_float32_forward"]
    assert ours["seconds"] == 0.40 and ours["cpu_seconds"] == 0.80
    assert ours["round_seconds"] == [0.40, 0.30, 0.50]
    assert sorted(ours["times"]) == [0.30, 0.40, 0.50]
    assert ours["peak_rss_mib"] == 420 and ours["added_rss_mib"] == 320
    assert ours["skipped_rounds"] == ["worker died"]
    assert merged["hf_torch_forward"] == skipped
    assert merge_rounds([[row(0.4, 400)]]) == [row(0.4, 400)]


def test_rounds_are_in_the_command_that_reproduces_a_run():
    assert "--rounds 3" in options_command(options("--rounds", "3"))
    assert "--rounds" not in options_command(options())


def test_a_subset_of_paths_is_in_the_command_that_reproduces_a_run():
    subset = "ours_float32_forward,ours_onnxruntime_forward"
    assert f"--paths {subset} " in options_command(options("--paths", subset))
    assert "--paths" not in options_command(options())


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--lengths", "512,x"], "Received: --lengths='512,x'"),
        (["--paths", "ours_float32_forward,nope"], "Received: --paths="),
        (["--backend", "mxnet"], "Received: --backend='mxnet'"),
        (["--tensorflow-onednn", "maybe"], "Received: --tensorflow-onednn='maybe'"),
        (["--hidden", "100", "--heads", "12"], "Received: --hidden=100, --heads=12"),
        (["--repeats", "0"], "Received: --repeats=0"),
        (["--rounds", "0"], "Received: --rounds=0"),
        (["--malloc", "jemalloc"], "Received: --malloc='jemalloc'"),
        (["--num-global", "600", "--lengths", "512"], "Received: --num-global=600"),
    ],
)
def test_bad_options_are_named_errors(argv, message):
    with pytest.raises(ValueError, match="must") as error:
        options(*argv)
    assert message in str(error.value)


def test_onednn_switch_reaches_the_workers_only_when_asked(monkeypatch):
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    assert "TF_ENABLE_ONEDNN_OPTS" not in runner.worker_environment("tensorflow")
    assert runner.worker_environment("tensorflow", "on")["TF_ENABLE_ONEDNN_OPTS"] == "1"
    assert runner.worker_environment("torch", "off")["KERAS_BACKEND"] == "torch"


def test_malloc_reuse_reaches_every_worker_only_when_asked(monkeypatch):
    monkeypatch.delenv("MALLOC_MMAP_MAX_", raising=False)
    assert "MALLOC_MMAP_MAX_" not in runner.worker_environment("torch")
    for backend in ("tensorflow", "torch", "numpy"):
        environment = runner.worker_environment(backend, malloc="reuse")
        assert environment["MALLOC_MMAP_MAX_"] == "0"
        assert int(environment["MALLOC_TRIM_THRESHOLD_"]) >= 2**40
    assert "--malloc reuse" in options_command(options("--malloc", "reuse"))
    assert "--malloc" not in options_command(options())


def test_quick_defaults():
    chosen = options("--quick")
    assert chosen["lengths"] == [512] and chosen["repeats"] == 2
    full = options()
    assert full["lengths"][-1] == 65536 and full["repeats"] == 5
    assert os.path.isabs(full["output_dir"])
