"""examples/long_summarization.py: its documents (checked independently of
the generator), a quick run end to end whose ONNX pair is compared with
Keras here, and the committed run whose figures README.md and docs/led.md
quote."""

import json
import os
import subprocess
import sys

import numpy as np

from helpers import ROOT
from helpers import load_example

RUN = os.path.join(ROOT, "docs", "examples", "long_summarization.json")
NOT_ARGUMENTS = ("json", "output", "export")  # where the files went


def sections(row, length, first_topic, first_value):
    """`{topic token: [its value tokens]}` read off one document's second half."""
    found = {}
    for position in range(length // 2, length - 1):
        token = int(row[position])
        if first_topic <= token < first_value:
            found.setdefault(token, []).append(int(row[position + 1]))
    return found


def test_every_document_asks_one_topic_and_holds_every_section_far_away():
    example = load_example("long_summarization")
    args = example.parse_args([])
    ids, question, summaries = example.make_documents(64, args, np.random.default_rng(1))
    topic_tokens = range(example.FIRST_TOPIC, example.FIRST_TOPIC + args.topics)
    asked_topics = set()
    for row in range(64):
        asked = int(ids[row, 1])
        asked_topics.add(asked)
        assert asked in topic_tokens and (ids[row, 1:1 + args.question] == asked).all()
        assert np.flatnonzero(question[row]).tolist() == list(range(1, 1 + args.question))
        # Between the question and the second half: filler only.
        assert (ids[row, 1 + args.question:args.length // 2] >= example.FIRST_FILLER).all()
        found = sections(ids[row], args.length, example.FIRST_TOPIC, example.FIRST_VALUE)
        assert sorted(found) == list(topic_tokens)
        values = [found[topic] for topic in sorted(found)]
        assert all(len(v) == args.section and len(set(v)) == 1 for v in values)
        assert len({v[0] for v in values}) == args.topics  # one value per topic, all different
        assert summaries[row].tolist() == [example.EOS, found[asked][0], example.EOS]
    assert asked_topics == set(topic_tokens)


def test_a_quick_run_serves_from_onnx_what_keras_generates(tmp_path):
    import keras

    import keras_longformer  # noqa: F401  (registers the classes the .keras file names)
    from keras_longformer.export import LEDOnnxGenerator

    output, directory = tmp_path / "lm.keras", tmp_path / "onnx"
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "long_summarization.py"), "--quick", "--skip-baseline",
         "--output", str(output), "--export", str(directory)],
        capture_output=True, text=True, timeout=600, env=dict(os.environ, KERAS_BACKEND="tensorflow"),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # The written files themselves, on new documents: onnxruntime's greedy
    # tokens against Keras's generate, never stopping early, so every
    # position is a decision.
    example = load_example("long_summarization")
    args = example.parse_args(["--quick"])
    ids, question, _ = example.make_documents(6, args, np.random.default_rng(9))
    lm = keras.saving.load_model(output)
    lm.compile(sampler="greedy")
    prompt = np.full((6, 3), 1, "int32")
    prompt[:, 0] = 2
    keras_tokens = np.asarray(lm.generate({
        "encoder_token_ids": ids, "encoder_padding_mask": np.ones_like(ids), "encoder_global_mask": question,
        "decoder_token_ids": prompt, "decoder_padding_mask": np.arange(3)[None].repeat(6, 0) < 1,
    }, stop_token_ids=None)["decoder_token_ids"])
    onnx_tokens = LEDOnnxGenerator(directory, provider="cpu").generate(ids, np.ones_like(ids), question,
                                                                        max_length=3, stop_token_ids=())
    assert np.array_equal(np.asarray(onnx_tokens), keras_tokens)


def test_bad_arguments_fail_before_any_work(tmp_path):
    for argv, message in ((["--topics", "1"], "--topics must be in [2, 8]. Received: 1"),
                          (["--length", "40"], "--length must be >= 64"),
                          (["--export", str(tmp_path / "missing" / "onnx")], "--export: the directory of")):
        result = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "long_summarization.py"), *argv],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and message in result.stderr, result.stderr


def test_the_committed_run_is_the_default_and_its_figures_are_quoted():
    with open(RUN, encoding="utf-8") as handle:
        run = json.load(handle)
    example = load_example("long_summarization")
    defaults = {k: v for k, v in vars(example.parse_args([])).items() if k not in NOT_ARGUMENTS}
    assert run["arguments"] == defaults and run["cpu_count"] == 2
    # What the figures claim: Longformer attention solves it; the window
    # alone picks a section (chance); onnxruntime summarizes identically.
    assert run["with_global"] >= 0.95 and abs(run["window_alone"] - run["chance"]) <= 0.1
    assert run["onnx"] == run["with_global"]
    quoted = (f"{run['with_global']:.3f} of the summaries right with Longformer attention, {run['window_alone']:.3f} "
              f"with the window alone (chance {run['chance']:.3f})")
    for page in ("README.md", os.path.join("docs", "led.md")):
        with open(os.path.join(ROOT, page), encoding="utf-8") as handle:
            assert quoted in " ".join(handle.read().split()), page


def test_the_other_seeds_are_quoted_as_they_came():
    """The spread over seeds docs/led.md states: runs of the default
    command with `--seed 1` and `--seed 2` (and `--skip-baseline`)."""
    example = load_example("long_summarization")
    with open(os.path.join(ROOT, "docs", "led.md"), encoding="utf-8") as handle:
        page = " ".join(handle.read().split())
    accuracies = {}
    for seed in (1, 2):
        with open(os.path.join(ROOT, "docs", "examples", f"long_summarization_seed{seed}.json"), encoding="utf-8") as handle:
            run = json.load(handle)
        expected = vars(example.parse_args(["--seed", str(seed), "--skip-baseline"]))
        assert run["arguments"] == {k: v for k, v in expected.items() if k not in NOT_ARGUMENTS}
        assert run["onnx"] == run["with_global"] and run["cpu_count"] == 2
        accuracies[seed] = run["with_global"]
    assert f"ends at {accuracies[1]:.3f}, with `--seed 2` it reaches {accuracies[2]:.3f}" in page
