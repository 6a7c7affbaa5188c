"""The committed `bench --model` run (docs/bench/model) holds what README.md and
docs/training.md say, and the targets it was run for: our training step faster
than Hugging Face's at every length both run; gradient checkpointing cutting the
peak at 16,384 tokens at least 3x for at most 1.4x the time."""

import json
import os

import pytest

from keras_longformer.bench import model_report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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


def test_the_figures_quoted_are_the_run_s(run):
    point, effect = run["by_point"], run["checkpointing"]["ours"]
    docs, readme = read("docs", "training.md"), read("README.md")
    hf = {n: point[("hf_torch_train", n)]["time_vs_ours"] for n in (1024, 4096)}
    assert "1.26x at 1,024\n  tokens and 1.43x at 4,096" in docs and round(hf[1024], 2) == 1.26 and round(hf[4096], 2) == 1.43
    assert f"{round(hf[4096], 2)}x faster than Hugging Face's at 4,096 tokens" in readme
    cut_4096, cut_16384 = effect["4096"], effect["16384"]
    assert f"{cut_4096['memory_cut']:.1f}x less memory at 4,096 tokens for {cut_4096['time_cost']:.2f}x the time" in docs
    plain, checkpointed = point[("ours_train", 16384)], point[("ours_checkpointed_train", 16384)]
    assert f"{gib(checkpointed['peak_rss_mib'])} against an estimated {gib(plain['estimated_peak_rss_mib'])} without ({cut_16384['memory_cut']:.1f}x" in docs
    assert f"cuts its memory\n{cut_16384['memory_cut']:.1f}x at 16,384 tokens" in readme
    stretch = checkpointed["seconds"] / (4 * point[("ours_train", 4096)]["seconds"])
    assert f"{checkpointed['seconds']:.0f} s, {stretch:.2f}x four times" in docs
    assert f"passed {gib(point[('hf_torch_checkpointed_train', 16384)]['stopped_rss_mib'])}" in docs
    assert f"{run['matmul_rate']['flops_per_second'] / 1e9:.0f} GFLOP/s" in docs
    first = (point[("ours_train", 1024)]["first_seconds"], checkpointed["first_seconds"])
    assert f"{first[0]:.0f} s at 1,024 tokens,\n  {first[1]:.0f} s with checkpointing" in docs
    for length, cells in ((4096, ("ours_train", "ours_checkpointed_train", "hf_torch_train",
                                  "hf_torch_checkpointed_train")),):
        for name in cells:
            row = point[(name, length)]
            assert f"{row['seconds']:.3g} s, {gib(row['peak_rss_mib'])}" in readme, name


def test_the_targets_hold_in_the_run(run):
    point, effect = run["by_point"], run["checkpointing"]["ours"]
    both = [n for n in (1024, 4096, 16384) if "seconds" in point[("hf_torch_train", n)]]
    assert both and all(point[("hf_torch_train", n)]["time_vs_ours"] > 1 for n in both)
    assert effect["16384"]["memory_cut"] >= 3 and not effect["16384"]["measured"]
    assert all(e["time_cost"] <= 1.4 for e in effect.values() if e["time_cost"] is not None)
    # The one 16,384-token step that ran is ours, checkpointed.
    assert [name for (name, n), row in point.items() if n == 16384 and "seconds" in row] == [
        "ours_checkpointed_train"
    ]
