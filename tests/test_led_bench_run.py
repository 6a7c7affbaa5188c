"""The committed `bench --led` run (docs/bench/led) holds what docs/led.md
quotes: its table is the one the run wrote, and every ratio and per-token
figure is recomputed here from the measured seconds (not read from the
report's own fields)."""

import json
import os

from helpers import ROOT

RUN = os.path.join(ROOT, "docs", "bench", "led", "led_generation.json")


def load():
    with open(RUN, encoding="utf-8") as handle:
        run = json.load(handle)
    with open(os.path.join(ROOT, "docs", "led.md"), encoding="utf-8") as handle:
        docs = handle.read()
    return run, docs, " ".join(docs.split())


def test_the_table_and_command_are_the_run_s():
    run, docs, flat = load()
    with open(os.path.join(ROOT, "docs", "bench", "led", "led_generation.md"), encoding="utf-8") as handle:
        heading, table = handle.read().split("\n\n", 1)
    assert table.strip() in docs and f"`{run['command']}`" in flat and run["date"][:10] in flat
    assert run["config"] == dict(layers=6, hidden=768, heads=12, window=512, vocabulary=50265,
                                 lengths=[1024, 4096], new_tokens=64, batch=1)
    assert run["machine"]["cpu_count"] == 2 and run["repeats"] == 3


def test_the_quoted_ratios_are_recomputed_from_the_seconds():
    run, _, flat = load()
    rows = {row["length"]: row for row in run["rows"]}
    for row in rows.values():
        assert row["tokens_equal"] == {"keras": True, "onnxruntime": True}
    def ratio(n, name):
        return rows[n]["huggingface"]["seconds"] / rows[n][name]["seconds"]

    def step_ms(n, name):
        measured = rows[n][name]
        return (measured["seconds"] - measured["seconds_one_token"]) / 63 * 1e3

    assert (f"{ratio(1024, 'keras'):.2f}x faster than Hugging Face's `generate` at 1,024 tokens and "
            f"{ratio(4096, 'keras'):.2f}x at 4,096 with ours, {ratio(1024, 'onnxruntime'):.2f}x and "
            f"{ratio(4096, 'onnxruntime'):.2f}x with the ONNX pair") in flat
    assert (f"one more token costs {step_ms(4096, 'keras'):.1f} ms against Hugging Face's "
            f"{step_ms(4096, 'huggingface'):.1f} at 4,096 tokens ({step_ms(1024, 'keras'):.1f} against "
            f"{step_ms(1024, 'huggingface'):.1f} at 1,024)") in flat
    assert step_ms(4096, "keras") < step_ms(4096, "huggingface")
    assert all(ratio(n, name) > 1 for n in rows for name in ("keras", "onnxruntime"))


def test_the_led_options_reproduce_the_committed_command():
    """`keras-longformer bench --led` parsed as the run's own command gives
    back that command (and refuses heads that do not divide the hidden size)."""
    import argparse

    import pytest

    from keras_longformer.bench import led_generation
    from keras_longformer.bench.cli import _positive
    from keras_longformer.bench.cli import add_arguments

    run, _, _ = load()
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    flags = run["command"].removeprefix("keras-longformer bench ").split()
    config, repeats, _ = led_generation.parse_led_options(parser.parse_args(flags), _positive)
    assert led_generation.command_of(config, repeats) == run["command"]
    assert dict(config, vocabulary=run["config"]["vocabulary"]) == run["config"]
    with pytest.raises(ValueError, match="--heads.*Received: --hidden=64, --heads=3"):
        led_generation.parse_led_options(parser.parse_args(["--led", "--quick", "--heads", "3"]), _positive)
