"""examples/pretrain_long.py: the recipe end to end, the paper's schedule, and
docs/training.md's dated run (and the README's summary) held to its committed JSON."""

import json
import math
import os
import re

from helpers import ROOT
from helpers import load_example
from test_examples_models import run_example

RUN = os.path.join(ROOT, "docs", "pretrain_long", "run.json")
ROWS = (
    "unigram (no context)",
    "short model, slices of its length",
    "long model, random new positions",
    "long model, copied positions",
)


def test_quick_run_scores_every_model_on_the_same_tokens(tmp_path):
    report_path = tmp_path / "run.json"
    run_example("pretrain_long.py", "--quick", "--long-steps", "5", "--json", str(report_path), timeout=600)
    report = json.loads(report_path.read_text())
    bits = report["bits_per_token"]
    assert list(bits)[: len(ROWS)] == list(ROWS) and "long model, +5 steps" in bits
    assert report["long_length"] == 4 * report["short_length"] and report["window"] == report["short_length"] // 2
    assert report["masked_tokens"] == report["held_out_documents"] * round(0.15 * (report["long_length"] - 2))
    # Every model is scored, in bits, on a vocabulary of 400: below log2(400) + a margin.
    assert all(0 < value < math.log2(400) + 1 for value in bits.values()), bits


def test_the_committed_run_has_the_shape_of_table_5():
    with open(RUN, encoding="utf-8") as file:
        bits = json.load(file)["bits_per_token"]
    unigram, short = bits["unigram (no context)"], bits["short model, slices of its length"]
    random, copied = bits["long model, random new positions"], bits["long model, copied positions"]
    trained = next(value for key, value in bits.items() if key.startswith("long model, +"))
    assert short < unigram - 0.5  # the short model learned context
    assert copied < short + 0.1  # copying loses almost nothing
    assert random > copied + 0.5  # random new positions lose most of it
    assert trained < short  # continued training at length goes further


def test_docs_and_readme_quote_the_committed_run():
    with open(RUN, encoding="utf-8") as file:
        run = json.load(file)
    with open(os.path.join(ROOT, "docs", "training.md"), encoding="utf-8") as file:
        docs = file.read()
    assert f"`{run['command']}`" in docs and run["date"] in docs
    assert f"{round(run['seconds'] / 60)} minutes" in docs
    for name, bits in run["bits_per_token"].items():
        row = re.search(rf"\| {re.escape(name)} \| ([0-9.]+) \|", docs)
        assert row and float(row.group(1)) == round(bits, 3), name
    assert f"{run['masked_tokens']:,} masked tokens of {run['held_out_documents']} held-out files" in docs
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as file:
        readme = " ".join(file.read().split())
    bits = run["bits_per_token"]
    trained = next(value for key, value in bits.items() if key.startswith("long model, +"))
    assert (f"({bits['long model, copied positions']:.3f} masked-LM bits per token against "
            f"{bits['short model, slices of its length']:.3f} for the short model; random new positions "
            f"{bits['long model, random new positions']:.3f}, the unigram baseline "
            f"{bits['unigram (no context)']:.3f})") in readme
    assert f"reach {trained:.3f} ({run['date']}" in readme


def test_the_paper_schedule_warms_up_then_decays_with_power_3():
    example = load_example("pretrain_long")
    optimizer = example.paper_optimizer(3e-5, total_steps=1000, warmup_steps=500, accumulation=4)
    schedule = optimizer._learning_rate
    rates = [float(schedule(step)) for step in (0, 250, 500, 750, 1000)]
    assert rates[0] == 0.0 and abs(rates[1] - 1.5e-5) < 1e-12 and abs(rates[2] - 3e-5) < 1e-12
    assert abs(rates[3] - 3e-5 * 0.5**3) < 1e-12 and rates[4] == 0.0
    assert optimizer.gradient_accumulation_steps == 4 and optimizer.global_clipnorm == 1.0
