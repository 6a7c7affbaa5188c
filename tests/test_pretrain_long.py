"""examples/pretrain_long.py: the recipe runs end to end, and the paper's schedule.

The Table 5 ordering (copied positions far below random, training lowers it)
is not asserted yet: at these sizes the short model stays on the unigram
plateau (see the README), so the rows differ by noise.
"""

import json
import math

from test_examples_models import load_example
from test_examples_models import run_example

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


def test_the_paper_schedule_warms_up_then_decays_with_power_3():
    example = load_example("pretrain_long")
    optimizer = example.paper_optimizer(3e-5, total_steps=1000, warmup_steps=500, accumulation=4)
    schedule = optimizer._learning_rate
    rates = [float(schedule(step)) for step in (0, 250, 500, 750, 1000)]
    assert rates[0] == 0.0 and abs(rates[1] - 1.5e-5) < 1e-12 and abs(rates[2] - 3e-5) < 1e-12
    assert abs(rates[3] - 3e-5 * 0.5**3) < 1e-12 and rates[4] == 0.0
    assert optimizer.gradient_accumulation_steps == 4 and optimizer.global_clipnorm == 1.0
