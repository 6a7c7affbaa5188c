"""Summarize long documents whose summary is decided far from where it sits.

    python examples/long_summarization.py

Trains a small Longformer Encoder-Decoder (LED) from scratch on a synthetic
task a short window cannot solve, then serves it from ONNX. Every document
is `--length` tokens (256 by default):

    <s> Q Q Q Q  filler ...  K0 v0 K0 v0 ... K0 v0  filler ...  K1 v1 K1 v1 ... K1 v1  filler </s>
        question             a section per topic, all in the second half

- the question (`--question` copies of a topic token `Q = K_t`) asks for
  topic `t` of `--topics`;
- in the second half, every topic has a section of `--section` pairs
  "topic, value", its value drawn per document (values differ within one);
- the summary is the asked topic's value, then `</s>`.

Every document has every section, so a model that reads the sections but
not the question can do no better than picking one: 1 / topics of the
summaries right. The question is at least `length / 2 - question` tokens
from every section; a token sees `layers * window` tokens around it (16 by
default). The decoder cross-attends to every encoder token, so it could in
principle read the question and then look for its section (two hops
through its two layers); the baseline shows it does not learn to.

Two identical LEDs are trained with `model.fit`:
- Longformer attention: the window plus global attention on the question
  (the paper's pattern for questions; `<s>` for plain summaries). Every
  token reads the question, so the asked section can mark itself;
- the same model with the window alone, whose encoder cannot relate the
  question to a section 124 tokens away.

The script prints both models' exact-match accuracy of their greedy
summaries, saves the global model to a `.keras` file and reloads it, exports
the pair `encoder.onnx` + `decoder.onnx` (`keras_longformer.export.
export_led_onnx`, verified against Keras) and summarizes the test documents
with onnxruntime alone (`LEDOnnxGenerator`): its summaries must equal
Keras's token for token. Nothing is downloaded. A run with the defaults:
docs/examples/long_summarization.json (`--json` writes one); `--quick` runs
a tiny version for tests.
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

CLS, PAD, EOS = 0, 1, 2  # LED's <s>, <pad>, </s>; the decoder starts from </s>
FIRST_TOPIC = 3
FIRST_VALUE = 11
FIRST_FILLER = 19
VOCABULARY_SIZE = 64
MAX_TOPICS = FIRST_VALUE - FIRST_TOPIC
SUMMARY_LENGTH = 3  # </s> value </s>: the decoder prompt, the value, the end


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--length", type=int, default=256, help="tokens per document (default 256)")
    parser.add_argument("--topics", type=int, default=2, help="topics (sections) per document")
    parser.add_argument("--section", type=int, default=6, help="'topic, value' pairs per section")
    parser.add_argument("--question", type=int, default=4, help="copies of the asked topic after <s>")
    parser.add_argument("--train-size", type=int, default=2048, help="training documents")
    parser.add_argument("--test-size", type=int, default=256, help="held-out documents")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--layers", type=int, default=2, help="encoder layers, and decoder layers")
    parser.add_argument("--window", type=int, default=8, help="one-sided window (HF attention_window = 2x)")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="where to save the .keras model (default: a temporary directory)")
    parser.add_argument("--export", default=None, metavar="DIR",
                        help="directory for the ONNX pair (default: a temporary one)")
    parser.add_argument("--skip-baseline", action="store_true", help="do not train the model with the window alone")
    parser.add_argument("--json", default=None, metavar="PATH.json",
                        help="also write the run (date, command, accuracies, seconds) to this file")
    parser.add_argument("--quick", action="store_true", help="a tiny run for tests (length 128, few documents)")
    args = parser.parse_args(argv)
    if args.quick:
        args.length = min(args.length, 128)
        args.train_size = min(args.train_size, 64)
        args.test_size = min(args.test_size, 16)
        args.epochs = min(args.epochs, 1)
    if not 2 <= args.topics <= MAX_TOPICS:
        parser.error(f"--topics must be in [2, {MAX_TOPICS}]. Received: {args.topics}")
    for flag in ("section", "question", "train_size", "test_size", "epochs", "batch_size", "layers", "window"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1. Received: {getattr(args, flag)}")
    sections = args.topics * (2 * args.section + 1)
    if args.length < 2 * (sections + args.question + 2):
        parser.error(f"--length must be >= {2 * (sections + args.question + 2)} to hold the question and "
                     f"{args.topics} sections of {args.section} pairs in its second half. Received: {args.length}")
    for flag, path in (("--export", args.export), ("--output", args.output)):
        # Fail now, not after minutes of training.
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            parser.error(f"{flag}: the directory of {path} does not exist")
    return args


def make_documents(count, args, rng):
    """Token ids `[count, length]`, question masks `[count, length]` and
    summaries `[count, 3]` (`</s> value </s>`).

    The second half is cut into one slot per topic, in a random order; each
    topic's section (`section` pairs "topic, value") sits at a random offset
    in its slot, so sections never overlap.
    """
    ids = rng.integers(FIRST_FILLER, VOCABULARY_SIZE, (count, args.length)).astype("int32")
    ids[:, 0], ids[:, -1] = CLS, EOS
    question = np.zeros_like(ids)
    question[:, 1:1 + args.question] = 1
    summaries = np.full((count, SUMMARY_LENGTH), EOS, "int32")
    half = args.length // 2
    slot = (args.length - 1 - half) // args.topics
    span = 2 * args.section
    for row in range(count):
        asked = rng.integers(args.topics)
        values = FIRST_VALUE + rng.permutation(MAX_TOPICS)[:args.topics]
        ids[row, 1:1 + args.question] = FIRST_TOPIC + asked
        for place, topic in enumerate(rng.permutation(args.topics)):
            start = half + place * slot + rng.integers(0, slot - span + 1)
            ids[row, start:start + span:2] = FIRST_TOPIC + topic
            ids[row, start + 1:start + span:2] = values[topic]
        summaries[row, 1] = values[asked]
    return ids, question, summaries


def features(ids, question, summaries, use_global):
    """The LED's inputs, teacher-forced: the decoder reads `</s> value` and
    is trained to write `value </s>`."""
    return {
        "encoder_token_ids": ids,
        "encoder_padding_mask": np.ones_like(ids),
        "encoder_global_mask": question if use_global else np.zeros_like(ids),
        "decoder_token_ids": summaries[:, :-1],
        "decoder_padding_mask": np.ones_like(summaries[:, :-1]),
    }


def build_lm(args):
    import keras

    from keras_longformer.models import LEDBackbone
    from keras_longformer.models import LEDSeq2SeqLM

    keras.utils.set_random_seed(args.seed)
    backbone = LEDBackbone(
        vocabulary_size=VOCABULARY_SIZE,
        num_layers=args.layers,
        num_heads=args.heads,
        hidden_dim=args.hidden,
        intermediate_dim=2 * args.hidden,
        window=args.window,
        max_encoder_sequence_length=args.length,
        max_decoder_sequence_length=SUMMARY_LENGTH + 1,
        dropout=0.0,
    )
    lm = LEDSeq2SeqLM(backbone)
    lm.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        sampler="greedy",
    )
    return lm


def greedy_summaries(lm, ids, global_mask, batch_size):
    """Keras's greedy `generate`: `[count, 3]` ids, `</s>` first, padded."""
    prompt = np.full((len(ids), SUMMARY_LENGTH), PAD, "int32")
    prompt[:, 0] = EOS
    prompt_mask = np.zeros(prompt.shape, bool)
    prompt_mask[:, 0] = True
    inputs = {"encoder_token_ids": ids, "encoder_padding_mask": np.ones_like(ids),
              "encoder_global_mask": global_mask, "decoder_token_ids": prompt, "decoder_padding_mask": prompt_mask}
    rows = []
    for start in range(0, len(ids), batch_size):
        batch = {name: value[start:start + batch_size] for name, value in inputs.items()}
        out = lm.generate(batch, stop_token_ids=[EOS])
        tokens = np.asarray(out["decoder_token_ids"])
        rows.append(np.where(np.asarray(out["decoder_padding_mask"]).astype(bool), tokens, PAD))
    return np.concatenate(rows)


def exact_match(generated, summaries):
    """Fraction of summaries generated exactly (`</s> value </s>`)."""
    return float(np.mean(np.all(generated == summaries, axis=1)))


def train_and_evaluate(args, data, use_global):
    """Trains one LED; returns it, its greedy test summaries and accuracy."""
    (train_ids, train_question, train_summaries), (test_ids, test_question, test_summaries) = data
    name = "Longformer attention (window + global question)" if use_global else "the window alone"
    print(f"\n=== Training with {name} ===", flush=True)
    lm = build_lm(args)
    inputs = features(train_ids, train_question, train_summaries, use_global)
    started = time.time()
    lm.fit(inputs, train_summaries[:, 1:], batch_size=args.batch_size, epochs=args.epochs,
           verbose=1 if sys.stdout.isatty() else 2)
    global_mask = test_question if use_global else np.zeros_like(test_ids)
    generated = greedy_summaries(lm, test_ids, global_mask, 4 * args.batch_size)
    accuracy = exact_match(generated, test_summaries)
    print(f"summaries right with {name}: {accuracy:.3f} ({time.time() - started:.0f}s)", flush=True)
    return lm, generated, accuracy


def compare(args):
    """Trains the LED with and without global attention on the same data.

    The numbers the README states come from here; tests call it with a
    small `args` (see `parse_args`) and assert them.

    Returns:
        dict with `chance` (1 / topics), `with_global` and `window_alone`
        (exact-match accuracies of greedy summaries; the latter None with
        `--skip-baseline`), `lm` (the model with global attention),
        `generated` (its test summaries) and `data` (train and test sets).
    """
    rng = np.random.default_rng(args.seed)
    data = (make_documents(args.train_size, args, rng), make_documents(args.test_size, args, rng))
    print(f"{args.train_size} training and {args.test_size} test documents of {args.length} tokens; "
          f"every section is at least {args.length // 2 - args.question} tokens from the question; "
          f"a token sees {args.layers * args.window} tokens around it.")
    lm, generated, accuracy = train_and_evaluate(args, data, True)
    baseline = None if args.skip_baseline else train_and_evaluate(args, data, False)[2]
    return {"chance": 1.0 / args.topics, "with_global": accuracy, "window_alone": baseline,
            "lm": lm, "generated": generated, "data": data}


def serve_from_onnx(lm, args, test_ids, test_question):
    """Exports the ONNX pair, summarizes with onnxruntime alone; returns its
    summaries (the caller checks them against Keras's)."""
    from keras_longformer.export import LEDOnnxGenerator
    from keras_longformer.export import export_led_onnx

    directory = args.export or os.path.join(tempfile.mkdtemp(), "long_summarization_onnx")
    # Verified at the trained length and a shorter one (1 token, window +- 1 are in every export's sweep).
    report = export_led_onnx(lm, directory, lengths=[args.length // 2, args.length], overwrite=True)
    print(f"exported {directory}: encoder.onnx + decoder.onnx, verified against Keras "
          f"(max abs error {report.max_abs_error:.1e})")
    generator = LEDOnnxGenerator(directory, provider="auto")
    started = time.time()
    tokens = generator.generate(test_ids, np.ones_like(test_ids), test_question, max_length=SUMMARY_LENGTH,
                                stop_token_ids=[EOS])
    print(f"onnxruntime ({generator.decoder.get_providers()[0]}) summarized {len(test_ids)} documents "
          f"in {time.time() - started:.2f}s")
    tokens = np.asarray(tokens)
    # The generator's rows end where the longest summary ends; Keras's at max_length.
    return np.pad(tokens, [(0, 0), (0, SUMMARY_LENGTH - tokens.shape[1])], constant_values=PAD)


def main(argv=None):
    return run(parse_args(argv))


def run(args):
    """Trains, reports, saves and reloads, serves from ONNX; returns the exit code."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    started = time.time()
    result = compare(args)
    import keras

    lm, generated, (_, (test_ids, test_question, test_summaries)) = result["lm"], result["generated"], result["data"]
    print("\n=== Result: summaries right (greedy, exact match) ===")
    print(f"chance (one of the sections):     {result['chance']:.3f}")
    print(f"Longformer attention:             {result['with_global']:.3f}")
    if result["window_alone"] is not None:
        print(f"the window alone:                 {result['window_alone']:.3f}")

    output = args.output or os.path.join(tempfile.mkdtemp(), "long_summarization.keras")
    lm.save(output)
    restored = keras.saving.load_model(output)  # compiled as saved: Adam's state, the greedy sampler
    if not np.array_equal(greedy_summaries(restored, test_ids, test_question, 4 * args.batch_size), generated):
        print("error: the reloaded model summarizes differently", file=sys.stderr)
        return 1
    print(f"saved {output}; the reloaded model's summaries are identical")

    served = serve_from_onnx(restored, args, test_ids, test_question)
    if not np.array_equal(served, generated):
        print(f"error: onnxruntime's summaries differ from Keras's:\n{served}\n{generated}", file=sys.stderr)
        return 1
    result["onnx"] = exact_match(served, test_summaries)
    print(f"onnxruntime's summaries equal Keras's, token for token: {result['onnx']:.3f} right")
    if args.json:
        write_run(args, result, time.time() - started)
    return 0


def write_run(args, result, seconds):
    """The run as JSON: what the README quotes is read back from this by the tests."""
    import datetime
    import json

    run = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python examples/long_summarization.py " + " ".join(sys.argv[1:]),
        "arguments": {key: value for key, value in vars(args).items() if key not in ("json", "output", "export")},
        "chance": result["chance"], "with_global": result["with_global"], "window_alone": result["window_alone"],
        "onnx": result["onnx"], "seconds": seconds, "cpu_count": os.cpu_count(),
    }
    with open(args.json, "w") as handle:
        json.dump(run, handle, indent=1)


if __name__ == "__main__":
    sys.exit(main())
