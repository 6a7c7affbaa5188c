"""docs/speed.md (and the README's short speed section) publish the committed
benchmark run, unchanged.

`docs/bench/bench.json` is the dated run docs/speed.md shows; its table must be
the one `keras-longformer bench` wrote beside it (`bench.md`), and every
figure the prose quotes must be that run's. The same for the run in rounds
(`docs/bench/linearity/`) the linearity paragraph quotes. No timing happens
here.
"""

import argparse
import json
import os
import re

import pytest

from keras_longformer.bench import parse_options
from keras_longformer.bench.cli import add_arguments
from keras_longformer.bench.cli import options_command
from helpers import ROOT



@pytest.fixture(scope="module")
def readme():
    """docs/speed.md, the full speed page (the name is the page's old home)."""
    with open(os.path.join(ROOT, "docs", "speed.md"), encoding="utf-8") as handle:
        return " ".join(handle.read().split())  # prose wraps anywhere


@pytest.fixture(scope="module")
def front_page():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        return " ".join(handle.read().split())


def load_run(*directories):
    """A committed `bench.json` under `docs/bench/`, rows also `by_point`."""
    path = os.path.join(ROOT, "docs", "bench", *directories, "bench.json")
    with open(path, encoding="utf-8") as handle:
        result = json.load(handle)
    result["by_point"] = {(row["path"], row["length"]): row for row in result["rows"]}
    return result


@pytest.fixture(scope="module")
def run():
    return load_run()


def test_the_table_is_the_one_the_run_wrote(readme):
    with open(os.path.join(ROOT, "docs", "bench", "bench.md"), encoding="utf-8") as handle:
        _, table = handle.read().split("\n\n", 1)
    assert " ".join(table.split()) in readme


def test_the_date_and_settings_are_the_run_s(readme, run):
    assert run["date"].startswith("2026-11-29") and "2026-11-29" in readme
    assert run["machine"]["cpu_count"] == 2 and run["machine"]["tf_enable_onednn_opts"] == "1"
    assert run["config"] == dict(hidden=768, heads=12, window=256, batch=1, num_global=2,
                                 head_dim=64, backend="tensorflow")
    assert run["repeats"] == 3 and "median of 3 runs" in readme


def test_the_quoted_figures_are_the_run_s(readme, run):
    point = run["by_point"]
    ours = point[("ours_float32_forward", 4096)]
    expected = {
        "runs at {} of the float32 matmul rate": f"{ours['fraction_of_limit']:.0%}",
        "{}x faster than Hugging Face's PyTorch layer": f"{point[('hf_torch_forward', 4096)]['time_vs_ours']:.2f}",
        "and {}x faster than Keras's": f"{point[('keras_mha_forward', 4096)]['time_vs_ours']:.2f}",
        "forward and backward, {}x faster": f"{point[('hf_torch_train', 4096)]['time_vs_ours']:.2f}",
        "({} MiB at 4,096 tokens": f"{ours['added_rss_mib']:.0f}",
        "{} GiB at 65,536)": f"{point[('ours_float32_forward', 65536)]['added_rss_mib'] / 1024:.1f}",
        "16,384 tokens take {}x the time of 4,096":
            f"{point[('ours_float32_forward', 16384)]['seconds'] / ours['seconds']:.1f}",
        "same run, {} GFLOP/s": f"{run['matmul_rates']['float32']['flops_per_second'] / 1e9:.0f}",
        "bfloat16 matmul runs at {} GFLOP/s":
            f"{run['matmul_rates']['bfloat16']['flops_per_second'] / 1e9:.0f}",
    }
    for sentence, figure in expected.items():
        assert sentence.format(figure) in readme, (sentence, figure)


def test_the_ranges_quoted_hold_over_the_run(readme, run):
    point = run["by_point"]
    onnx = [point[("ours_onnxruntime_forward", n)]["time_vs_ours"] for n in (4096, 8192, 16384, 32768, 65536)]
    bf16 = [point[("ours_bfloat16_forward", n)]["time_vs_ours"] for n in (512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)]
    low, high = (float(x) for x in re.search(r"onnxruntime on CPU is ([\d.]+)-([\d.]+)x slower", readme).groups())
    assert round(min(onnx), 2) == low and round(max(onnx), 2) == high
    low, high = (float(x) for x in re.search(r"`mixed_bfloat16` is ([\d.]+)-([\d.]+)x slower", readme).groups())
    assert round(min(bf16), 1) == low and round(max(bf16), 1) == high


@pytest.fixture(scope="module")
def rounds_run():
    return load_run("linearity")


def test_the_rounds_run_is_the_one_quoted(readme, rounds_run):
    with open(os.path.join(ROOT, "docs", "bench", "linearity", "bench.md"), encoding="utf-8") as handle:
        heading, _ = handle.read().split("\n\n", 1)
    assert f"`{rounds_run['command']}`" in heading
    # The short command the README quotes reproduces the run's settings.
    quoted = re.search(r"`keras-longformer bench (--paths [^`]*--rounds 3)`", readme).group(1)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    reproduced = options_command(parse_options(parser.parse_args(quoted.split())))
    assert "keras-longformer bench " + reproduced == rounds_run["command"]
    assert rounds_run["rounds"] == 3 and rounds_run["date"].startswith("2026-11-29")
    point = rounds_run["by_point"]
    for path in ("ours_float32_forward", "ours_onnxruntime_forward"):
        for length in (4096, 8192, 16384):
            assert len(point[(path, length)]["round_seconds"]) == 3, (path, length)


def test_the_rounds_run_s_figures_are_the_ones_quoted(readme, run, rounds_run):
    point = rounds_run["by_point"]

    def scaling(path):
        return point[(path, 16384)]["seconds"] / point[(path, 4096)]["seconds"]

    tensorflow, onnxruntime = scaling("ours_float32_forward"), scaling("ours_onnxruntime_forward")
    assert tensorflow <= 4.1 and onnxruntime <= 4.1  # the linearity target
    assert (f"16,384 tokens take {tensorflow:.2f}x the time of 4,096 in TensorFlow and "
            f"{onnxruntime:.2f}x in onnxruntime") in readme
    exported = [point[("ours_onnxruntime_forward", n)] for n in (4096, 8192, 16384)]
    ours = [point[("ours_float32_forward", n)] for n in (4096, 8192, 16384)]
    ratios = [row["time_vs_ours"] for row in exported]
    assert f"onnxruntime is {min(ratios):.2f}-{max(ratios):.2f}x slower" in readme
    rates = (rounds_run["onnxruntime_matmul_rate"]["flops_per_second"] / 1e9,
             rounds_run["matmul_rates"]["float32"]["flops_per_second"] / 1e9)
    assert "shapes is {:.0f} GFLOP/s against TensorFlow's {:.0f}".format(*rates) in readme
    own = [row["fraction_of_runtime_limit"] for row in exported]
    limit = [row["fraction_of_limit"] for row in ours]
    assert (f"{min(own):.0%}-{max(own):.0%} for onnxruntime and "
            f"{min(limit):.0%}-{max(limit):.0%} for TensorFlow").replace("%-", "-") in readme
    # The spread of one 4,096-token call: the full run's point to the slowest round here.
    calls = [run["by_point"][("ours_float32_forward", 4096)]["seconds"],
             *point[("ours_float32_forward", 4096)]["round_seconds"]]
    assert f"has taken {min(calls):.2f} to {max(calls):.2f} s on different runs" in readme


def _malloc_run(name):
    """`({path: row}, result)` of a run in `docs/bench/malloc/` (one length each)."""
    result = load_run("malloc", name)
    return {row["path"]: row for row in result["rows"]}, result


MALLOC_RUN_BACKENDS = dict(
    torch_default="torch", torch_reuse="torch", tensorflow_default="tensorflow",
    tensorflow_reuse="tensorflow", all_reuse="tensorflow", jax_reuse="jax",
)


def test_the_malloc_runs_are_what_their_names_say():
    for name, backend in MALLOC_RUN_BACKENDS.items():
        _, result = _malloc_run(name)
        reuse = name.endswith("reuse")
        assert ("--malloc reuse" in result["command"]) == reuse, name
        assert bool(result["machine"]["malloc"]) == reuse, name
        assert result["rounds"] == 2 and result["config"]["backend"] == backend, name


def test_the_malloc_figures_are_the_runs(readme):
    torch_default, _ = _malloc_run("torch_default")
    torch_reuse, _ = _malloc_run("torch_reuse")
    tensorflow_default, _ = _malloc_run("tensorflow_default")
    tensorflow_reuse, _ = _malloc_run("tensorflow_reuse")
    everyone, _ = _malloc_run("all_reuse")

    def pair(default, reuse, path):
        return f"{default[path]['seconds']:.3g}", f"{reuse[path]['seconds']:.3g}"

    expected = [
        "torch backend takes {} s with the default and {} s with reuse".format(
            *pair(torch_default, torch_reuse, "ours_float32_forward")),
        "Hugging Face's {} s and {} s forward".format(*pair(torch_default, torch_reuse, "hf_torch_forward")),
        "{} s and {} s forward and backward".format(*pair(torch_default, torch_reuse, "hf_torch_train")),
        "gain nothing ({} and {} s, {} and {} s,".format(
            *pair(tensorflow_default, tensorflow_reuse, "ours_float32_forward"),
            *pair(tensorflow_default, tensorflow_reuse, "ours_onnxruntime_forward")),
        f"is {everyone['hf_torch_forward']['time_vs_ours']:.2f}x faster than Hugging Face's forward",
        f"{everyone['hf_torch_train']['time_vs_ours']:.2f}x forward and backward",
        f"and {everyone['keras_mha_forward']['time_vs_ours']:.2f}x faster than Keras MHA",
        f"runs at {everyone['hf_torch_forward']['fraction_of_limit']:.0%} of the matmul rate",
        f"need ours at {2.5 * everyone['hf_torch_forward']['fraction_of_limit']:.0%} of it",
    ]
    for sentence in expected:
        assert sentence in readme, sentence
    added = [torch_reuse[path]["added_rss_mib"] / torch_default[path]["added_rss_mib"] - 1
             for path in torch_default]
    assert f"for {min(added):.0%}-{max(added):.0%} more added memory".replace("%-", "-") in readme


def test_the_backend_figures_are_the_runs(readme):
    quoted = []
    for name in ("tensorflow_default", "torch_reuse", "jax_reuse"):
        rows, _ = _malloc_run(name)
        quoted += [f"{rows[path]['seconds']:.3g}" for path in ("ours_float32_forward", "ours_float32_train")]
    sentence = ("our layer takes {} s forward and {} s forward and backward on TensorFlow, {} s and "
                "{} s on torch, and {} s and {} s on JAX").format(*quoted)
    assert sentence in readme, sentence


def test_the_front_page_table_is_the_run_s(front_page, run):
    point = run["by_point"]
    for name, peer in (("ours (TensorFlow)", "ours_float32"), ("Hugging Face (PyTorch)", "hf_torch"),
                       ("Keras `MultiHeadAttention(sliding_window=513)`", "keras_mha")):
        forward, train = point[(f"{peer}_forward", 4096)], point[(f"{peer}_train", 4096)]
        row = (f"| {name} | {forward['seconds']:.3g} s | {train['seconds']:.3g} s | "
               f"{forward['added_rss_mib']:,.0f} MiB | {train['added_rss_mib']:,.0f} MiB |")
        assert row in front_page, row
    assert "2026-11-29" in front_page and "[docs/speed.md](docs/speed.md)" in front_page
    assert "`keras-longformer bench --repeats 3 --output-dir docs/bench`, median of 3 runs" in front_page
    assert run["repeats"] == 3 and run["command"].endswith("--repeats 3")
    # The tuned-PyTorch margins are the malloc runs' figures docs/speed.md holds.
    with open(os.path.join(ROOT, "docs", "speed.md"), encoding="utf-8") as handle:
        speed = " ".join(handle.read().split())
    for figure in ("1.37x faster than Hugging Face's forward", "1.69x forward and backward"):
        assert figure in speed
    assert "1.37x faster forward and 1.69x forward and backward" in front_page


def test_the_generated_token_figures_are_the_run_s(readme, run):
    steps = {n: row["seconds"] * 1e3 for (path, n), row in run["by_point"].items()
             if path == "ours_generate" and "seconds" in row}
    assert min(steps) == 512 and max(steps) == 65536
    quoted = (f"a one-layer causal LM: {steps[4096]:.2f} ms at 4,096 tokens, {min(steps.values()):.2f} to "
              f"{max(steps.values()):.2f} ms from 512 to 65,536")
    assert quoted in readme
    # The same at every position: the slowest within 1.6x of the fastest over a 128x longer context.
    assert max(steps.values()) / min(steps.values()) < 1.6


def test_the_cost_of_64_global_tokens_is_the_runs_own(readme):
    seconds = {}
    for count in (64, 0):
        run = load_run("globals", str(count))
        assert run["config"]["num_global"] == count and run["rounds"] == 2 and run["repeats"] == 5
        assert f"--num-global {count}" in run["command"]
        (row,) = [row for row in run["rows"] if row["path"] == "ours_float32_forward" and row["length"] == 4096]
        seconds[count] = row["seconds"]
    extra = seconds[64] / seconds[0] - 1
    assert (f"64 of them take {extra:.0%} longer than none at 4,096 tokens ({seconds[64]:.3f} against "
            f"{seconds[0]:.3f} s") in readme
