"""examples/char_lm.py: the paper's staged schedule and its strided long
evaluation, and the README's dated run held to its committed JSON."""

import json
import math
import os
import warnings

import pytest

from helpers import ROOT
from helpers import load_example

RUN = os.path.join(ROOT, "docs", "char_lm", "run.json")


def test_each_phase_doubles_window_and_length_and_halves_the_rate():
    example = load_example("char_lm")
    schedule = example.phase_schedule(512, 8, 2e-3, 16, phases=3)
    assert [p["length"] for p in schedule] == [512, 1024, 2048]
    assert [p["min_window"] for p in schedule] == [8, 16, 32]
    assert [p["learning_rate"] for p in schedule] == [2e-3, 1e-3, 5e-4]
    assert [p["batch_size"] for p in schedule] == [16, 8, 4]  # the same characters per step


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(phases=0), "Received: phases=0"),
        (dict(phases=2, window_growth=0), "may not shrink the window .*Received: window_growth=0"),
        (dict(phases=2, length_growth=0), "may not drop trained positions.*Received: length_growth=0"),
    ],
)
def test_a_schedule_that_shrinks_or_has_no_phase_is_refused(kwargs, message):
    example = load_example("char_lm")
    with pytest.raises(ValueError, match=message):
        example.phase_schedule(512, 8, 2e-3, 16, **kwargs)


def quick_args(example, tmp_path, *extra):
    text = "".join(f"line {i}: the quick brown fox {i % 7} jumps\n" for i in range(400))
    path = tmp_path / "text.txt"
    path.write_text(text, encoding="utf-8")
    return example.parse_args(["--text-file", str(path), "--quick", "--sample-length", "0", *extra])


def test_two_phases_then_a_strided_evaluation_longer_than_training(tmp_path):
    example = load_example("char_lm")
    args = quick_args(example, tmp_path, "--phases", "2", "--eval-length", "300",
                      "--eval-stride", "40", "--eval-chars", "700", "--epochs", "3")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = example.train_and_evaluate(args)
    # Every phase trains all its --steps x --epochs batches (Keras warns where it runs out).
    assert not [w for w in caught if "ran out of data" in str(w.message)]
    phases = result["phases"]
    assert [(p["length"], p["windows"]) for p in phases] == [(64, [4, 8]), (128, [8, 16])]
    long = result["long_evaluation"]
    # Every held-out character after the first is scored exactly once.
    assert long["scored_characters"] == 700 - 1
    assert (long["eval_length"], long["eval_stride"]) == (300, 40)
    assert math.isfinite(long["bits_per_character"])
    # Context helps: both evaluations beat the no-context baseline.
    assert result["bits_per_character"] < result["unigram_entropy"]
    assert long["bits_per_character"] < result["unigram_entropy"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--eval-length", "100", "--eval-stride", "100"), "eval-stride.*Received: --eval-stride=100"),
        (("--eval-length", "5000"), "shorter than one evaluation window.*--eval-length=5000"),
    ],
)
def test_bad_evaluation_sizes_fail_before_training(tmp_path, extra, message):
    example = load_example("char_lm")
    args = quick_args(example, tmp_path, *extra)
    with pytest.raises(ValueError, match=message):
        example.train_and_evaluate(args)


def test_readme_and_docs_quote_the_committed_run():
    with open(RUN, encoding="utf-8") as file:
        run = json.load(file)
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as file:
        readme = " ".join(file.read().split())
    with open(os.path.join(ROOT, "docs", "training.md"), encoding="utf-8") as file:
        docs = file.read()
    long = run["long_evaluation"]
    assert f"`{run['command']}`" in docs and run["date"] in docs and run["date"] in readme
    assert f"{long['bits_per_character']:.3f} bits per character" in readme
    assert f"unigram baseline {run['unigram_entropy']:.3f}" in readme
    assert f"**{long['bits_per_character']:.3f}** over {long['scored_characters']:,}" in docs
    assert f"{run['bits_per_character']:.3f} in sequences" in docs
    assert f"(no context) is {run['unigram_entropy']:.3f}, a uniform guess {run['uniform']:.3f}" in docs
    for phase in run["phases"]:
        row = (f"| {phase['phase']} | {phase['length']:,} | {', '.join(map(str, phase['windows']))} | "
               f"{phase['learning_rate']:g} | {phase['batch_size']} | {phase['loss'] / math.log(2):.3f} |")
        assert row in docs, row
    # The committed run learned context at length: well under the baseline.
    assert long["bits_per_character"] < run["unigram_entropy"] - 1.0
    assert [p["length"] for p in run["phases"]] == [
        run["phases"][0]["length"] * 2**i for i in range(len(run["phases"]))
    ]
    assert long["eval_length"] == 32256 and long["eval_stride"] == 512
    assert long["scored_characters"] >= long["eval_length"] - 1
