"""The committed `bench --model` run (docs/bench/model) holds what README.md and
docs/training.md say, and the targets it was run for: our training step faster
than Hugging Face's at every length both run; gradient checkpointing cutting the
peak at 16,384 tokens at least 3x for at most 1.4x the time."""

import json
import os

import pytest

from keras_longformer.bench import model_report
from helpers import ROOT

RUN = os.path.join(ROOT, "docs", "bench", "model", "model_bench.json")


@pytest.fixture(scope="module")
def run():
    with open(RUN, encoding="utf-8") as handle:
        report = json.load(handle)
    report["by_point"] = {(row["path"], row["length"]): row for row in report["rows"]}
    return report


def read(*parts):
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as handle:
        return handle.read()


def gib(mib):
    return f"{mib / 1024:.1f} GiB"


def test_the_docs_table_is_the_one_the_run_writes(run):
    table = model_report.format_markdown(run["rows"])
    assert table in read("docs", "training.md")
    assert table in read("docs", "bench", "model", "model_bench.md")
    assert f"`{run['command']}`" in read("docs", "training.md") and run["date"][:10] in read("docs", "training.md")


def measured(run, name, length):
    return run["by_point"][(name, length)]


def extrapolated_peak(run, name, length):
    """Recomputed here from the measured peaks (not the report's estimate):
    the line through the path's two measured shorter lengths."""
    (t0, m0), (t1, m1) = sorted(
        (n, row["peak_rss_mib"]) for (path, n), row in run["by_point"].items()
        if path == name and n < length and "peak_rss_mib" in row
    )[-2:]
    return m1 + (m1 - m0) / (t1 - t0) * (length - t1)


def test_the_figures_quoted_are_the_run_s(run):
    docs, readme = read("docs", "training.md"), " ".join(read("README.md").split())
    hf = {n: measured(run, "hf_torch_train", n)["seconds"] / measured(run, "ours_train", n)["seconds"]
          for n in (1024, 4096)}
    assert round(hf[1024], 2) == 1.26 and round(hf[4096], 2) == 1.43
    assert "1.26x at 1,024\n  tokens and 1.43x at 4,096" in docs
    assert f"{round(hf[4096], 2)}x faster than Hugging Face's at 4,096 tokens" in readme
    plain, checkpointed = measured(run, "ours_train", 4096), measured(run, "ours_checkpointed_train", 4096)
    cut, cost = plain["peak_rss_mib"] / checkpointed["peak_rss_mib"], checkpointed["seconds"] / plain["seconds"]
    assert f"{cut:.1f}x less memory at 4,096 tokens for {cost:.2f}x the time" in docs
    long = measured(run, "ours_checkpointed_train", 16384)
    estimate = extrapolated_peak(run, "ours_train", 16384)
    long_cut = estimate / long["peak_rss_mib"]
    assert f"{gib(long['peak_rss_mib'])} against an estimated {gib(estimate)} without ({long_cut:.1f}x" in docs
    assert f"cuts its memory {long_cut:.1f}x at 16,384 tokens" in readme
    stretch = long["seconds"] / (4 * plain["seconds"])
    assert f"{long['seconds']:.0f} s, {stretch:.2f}x four times" in docs
    assert f"passed {gib(measured(run, 'hf_torch_checkpointed_train', 16384)['stopped_rss_mib'])}" in docs
    assert f"{run['matmul_rate']['flops_per_second'] / 1e9:.0f} GFLOP/s" in docs
    first = (measured(run, "ours_train", 1024)["first_seconds"], long["first_seconds"])
    assert f"{first[0]:.0f} s at 1,024 tokens,\n  {first[1]:.0f} s with checkpointing" in docs
    for name in ("ours_train", "ours_checkpointed_train", "hf_torch_train", "hf_torch_checkpointed_train"):
        row = measured(run, name, 4096)
        assert f"{row['seconds']:.3g} s, {gib(row['peak_rss_mib'])}" in docs, name


def test_the_targets_hold_in_the_run(run):
    # Ratios recomputed from the measured seconds and peaks.
    both = [n for n in (1024, 4096, 16384) if "seconds" in measured(run, "hf_torch_train", n)]
    assert both and all(
        measured(run, "hf_torch_train", n)["seconds"] > measured(run, "ours_train", n)["seconds"] for n in both
    )
    assert "seconds" not in measured(run, "ours_train", 16384)  # cannot run here: extrapolated
    long = measured(run, "ours_checkpointed_train", 16384)
    assert extrapolated_peak(run, "ours_train", 16384) / long["peak_rss_mib"] >= 3
    for n in (1024, 4096):
        cost = measured(run, "ours_checkpointed_train", n)["seconds"] / measured(run, "ours_train", n)["seconds"]
        assert cost <= 1.4, (n, cost)
    # The one 16,384-token step that ran is ours, checkpointed.
    assert [name for (name, n), row in run["by_point"].items() if n == 16384 and "seconds" in row] == [
        "ours_checkpointed_train"
    ]
