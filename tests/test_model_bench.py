"""`keras-longformer bench --model`: a whole model's training step, ours with and
without gradient checkpointing against Hugging Face's. A tiny run writes its
JSON, table and plots with every path timed; the FLOP count, the memory
extrapolation, the watchdog and the options checked on their own. No timed
assertions."""

import argparse
import json
import subprocess
import sys

import pytest

from keras_longformer.bench import model_report
from keras_longformer.bench import parse_options
from keras_longformer.bench import runner
from keras_longformer.bench.cli import add_arguments
from keras_longformer.bench.flops import band_pairs
from keras_longformer.bench.model_paths import MODEL_PATHS
from keras_longformer.bench.model_paths import model_useful_flops

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = ["--layers", "1", "--hidden", "32", "--heads", "2", "--window", "8", "--lengths", "32,64"]


def options(*argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parse_options(parser.parse_args(list(argv)))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("model_bench")
    result = subprocess.run(
        [sys.executable, "-m", "keras_longformer.cli", "bench", "--model", "--quick", *TINY,
         "--repeats", "1", "--output-dir", str(output_dir)],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return output_dir, json.loads((output_dir / "model_bench.json").read_text())


def test_tiny_run_times_every_path_and_writes_its_files(tiny_run):
    output_dir, report = tiny_run
    for name in ("model_time_vs_length.png", "model_memory_vs_length.png"):
        assert (output_dir / name).read_bytes()[:8] == PNG_MAGIC
    assert report["config"] == dict(layers=1, hidden=32, heads=2, window=8, batch=1, num_global=2,
                                    head_dim=16, intermediate=128, backend="tensorflow")
    assert report["matmul_rate"]["flops_per_second"] > 0
    rows = {(row["path"], row["length"]): row for row in report["rows"]}
    assert set(rows) == {(path.name, n) for path in MODEL_PATHS for n in (32, 64)}
    for (name, length), row in rows.items():
        assert "skipped" not in row, row
        assert row["peak_rss_mib"] >= row["model_rss_mib"] > 0
        assert row["tokens_per_second"] == pytest.approx(length / row["seconds"])
        assert 0 < row["fraction_of_limit"] < 1.5
        if name != "ours_train":
            reference = rows[("ours_train", length)]
            assert row["time_vs_ours"] == pytest.approx(row["seconds"] / reference["seconds"])
    assert set(report["checkpointing"]["ours"]) == {"32", "64"}
    table = (output_dir / "model_bench.md").read_text()
    assert report["command"] in table and table.count("\n| 32 |") + table.count("\n| 64 |") == 2


def test_useful_flops_of_a_training_step_count_attention_and_feed_forward():
    config = dict(layers=3, hidden=64, heads=4, window=8, batch=2, num_global=0)
    length = 100
    attention = 4 * 2 * length * 64 * 64 + 2 * 2 * band_pairs(length, 8) * 64
    feed_forward = 2 * 2 * length * 64 * 256
    assert model_useful_flops(config, length) == 3 * 3 * 2 * (attention + feed_forward)


def test_peak_memory_is_extrapolated_on_the_line_through_two_shorter_lengths():
    rows = [dict(path="ours_train", length=1024, peak_rss_mib=3000.0),
            dict(path="ours_train", length=4096, peak_rss_mib=6000.0),
            dict(path="ours_checkpointed_train", length=4096, peak_rss_mib=2500.0)]
    assert model_report.extrapolated_peak_mib(rows, "ours_train", 16384) == pytest.approx(18000.0)
    assert model_report.extrapolated_peak_mib(rows, "ours_checkpointed_train", 16384) is None


def test_checkpointing_effect_uses_the_estimate_where_the_plain_step_did_not_fit():
    rows = [
        dict(path="ours_train", length=1024, seconds=1.0, peak_rss_mib=3000.0),
        dict(path="ours_train", length=4096, seconds=4.0, peak_rss_mib=6000.0),
        dict(path="ours_train", length=16384, skipped="estimated peak ..."),
        dict(path="ours_checkpointed_train", length=4096, seconds=5.0, peak_rss_mib=2000.0),
        dict(path="ours_checkpointed_train", length=16384, seconds=20.0, peak_rss_mib=4500.0),
    ]
    model_report.annotate(rows, dict(layers=1, hidden=32, heads=2, window=8, batch=1, num_global=0), None)
    effect = model_report.checkpointing_effect(rows)
    assert effect[4096] == dict(memory_cut=3.0, time_cost=1.25, measured=True)
    assert effect[16384] == dict(memory_cut=4.0, time_cost=None, measured=False)


def test_the_watchdog_stops_a_step_over_the_memory_limit(tmp_path):
    rows = []
    spec = dict(config=dict(layers=1, hidden=32, heads=2, window=8, batch=1, num_global=2),
                repeats=1, warmup=1, memory_limit_bytes=1, points=[dict(path="ours_train", length=32)])
    failure = runner.run_process(spec, "tensorflow", 300, rows.append,
                                 module="keras_longformer.bench.model_worker")
    assert failure.startswith("worker exited with code 3")
    assert len(rows) == 1 and rows[0]["row"]["over_memory"] is True
    assert "over the limit" in rows[0]["row"]["skipped"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--rounds", "2"], "Received: --rounds=2"),
        (["--paths", "ours_float32_forward"], "with `--model`. Received: --paths="),
        (["--layers", "0"], "Received: --layers=0"),
        (["--hidden", "100", "--heads", "12"], "Received: --hidden=100, --heads=12"),
    ],
)
def test_bad_model_options_are_named_errors(argv, message):
    with pytest.raises(ValueError, match="must|not supported") as error:
        options("--model", *argv)
    assert message in str(error.value)


def test_model_defaults_are_the_base_configuration():
    full = options("--model")
    assert full["config"] == dict(layers=12, hidden=768, heads=12, window=256, batch=1, num_global=2)
    assert full["lengths"] == [1024, 2048, 4096, 8192, 16384] and full["repeats"] == 2
    quick = options("--model", "--quick")
    assert quick["config"]["layers"] == 2 and quick["lengths"] == [256, 512]
    # The layer benchmark keeps its own defaults.
    assert options()["config"]["hidden"] == 768 and "layers" not in options()["config"]
