"""Classify long documents whose label sits thousands of tokens from the start.

    python examples/long_document_classification.py

Generates a synthetic task a short window cannot solve: every document is
`--length` tokens (2,048 by default) of random filler that start with a
classification token `<s>`; in the last quarter, `--markers` copies (32) of
one of `--classes` marker tokens are hidden, and the label is which marker.
The classifier reads the first token (`pooled_output`), so the evidence is
1,000-2,000 positions away from where the label is read.

Two identical small Longformers are trained with `model.fit`:
- with global attention on `<s>`: it attends every token, so it can find
  the marker wherever it is;
- without global attention: `<s>` only sees `layers * window` tokens
  around it (64 by default), so it can do no better than chance.

The script reports both test accuracies against chance, saves the global
model to a `.keras` file, reloads it and checks the predictions are
identical. With `--export model.onnx` it also exports the reloaded model
to ONNX (verified against Keras by `keras_longformer.export.export_onnx`).
Nothing is downloaded. A run with the defaults, its accuracies and
seconds: docs/examples/long_document_classification.json (`--json`
writes one); `--quick` runs a tiny version in well under a minute.
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

CLS, PAD, EOS = 0, 1, 2
FIRST_MARKER = 3
FIRST_FILLER = 16
VOCABULARY_SIZE = 64


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--length", type=int, default=2048, help="tokens per document (default 2048)")
    parser.add_argument("--classes", type=int, default=4, help="number of marker tokens / labels")
    parser.add_argument("--markers", type=int, default=32, help="copies of the marker per document")
    parser.add_argument("--train-size", type=int, default=512, help="training documents")
    parser.add_argument("--test-size", type=int, default=128, help="held-out documents")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=None, help="steps per epoch (default: the whole training set)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--window", type=int, default=32, help="one-sided window (HF attention_window = 2x)")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=5e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="where to save the .keras model (default: a temporary directory)")
    parser.add_argument("--export", default=None, metavar="PATH.onnx", help="also export the reloaded model to ONNX")
    parser.add_argument("--skip-baseline", action="store_true", help="do not train the model without global attention")
    parser.add_argument("--json", default=None, metavar="PATH.json",
                        help="also write the run (date, command, accuracies, seconds) to this file")
    parser.add_argument("--quick", action="store_true", help="a tiny run for tests (length 512, few documents)")
    args = parser.parse_args(argv)
    if args.quick:
        args.length = min(args.length, 512)
        args.train_size = min(args.train_size, 64)
        args.test_size = min(args.test_size, 32)
        args.epochs = min(args.epochs, 1)
        args.window = min(args.window, 16)
    if args.length < 64:
        parser.error(f"--length must be >= 64. Received: {args.length}")
    if not 2 <= args.classes <= FIRST_FILLER - FIRST_MARKER:
        parser.error(f"--classes must be in [2, {FIRST_FILLER - FIRST_MARKER}]. Received: {args.classes}")
    for flag, path in (("--export", args.export), ("--output", args.output)):
        # Fail now, not after minutes of training.
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            parser.error(f"{flag}: the directory of {path} does not exist")
    return args


def make_documents(count, length, classes, markers, vocabulary_size, rng):
    """Token ids `[count, length]`, padding masks and labels.

    Each document is `<s>`, random filler and a closing `</s>`, between 80%
    and 100% of `length` long (the rest is padding); `markers` copies of
    marker token `FIRST_MARKER + label` replace filler at random positions
    in its last quarter.
    """
    ids = np.full((count, length), PAD, "int32")
    padding = np.zeros((count, length), "int32")
    labels = rng.integers(0, classes, count)
    for row in range(count):
        size = int(rng.integers(int(0.8 * length), length + 1))
        ids[row, :size] = rng.integers(FIRST_FILLER, vocabulary_size, size)
        ids[row, 0], ids[row, size - 1] = CLS, EOS
        last_quarter = np.arange(3 * size // 4, size - 1)
        positions = rng.choice(last_quarter, min(markers, len(last_quarter)), replace=False)
        ids[row, positions] = FIRST_MARKER + labels[row]
        padding[row, :size] = 1
    return ids, padding, labels


def features(ids, padding, use_global):
    glob = np.zeros_like(ids)
    if use_global:
        glob[:, 0] = 1  # <s> attends, and is attended by, every token
    return {"token_ids": ids, "padding_mask": padding, "global_mask": glob}


def build_classifier(args, vocabulary_size):
    import keras

    from keras_longformer.models import LongformerBackbone
    from keras_longformer.models import LongformerTextClassifier

    keras.utils.set_random_seed(args.seed)
    backbone = LongformerBackbone(
        vocabulary_size=vocabulary_size,
        num_layers=args.layers,
        num_heads=args.heads,
        hidden_dim=args.hidden,
        intermediate_dim=2 * args.hidden,
        window=args.window,
        max_sequence_length=args.length,
        pad_token_id=PAD,
        dropout=0.0,
        attention_dropout=0.0,
    )
    classifier = LongformerTextClassifier(backbone, num_classes=args.classes, dropout=0.0)
    classifier.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=args.learning_rate, weight_decay=0.01, global_clipnorm=1.0)
    )
    return classifier


def train_and_evaluate(args, data, use_global, vocabulary_size):
    (train_ids, train_padding, train_labels), (test_ids, test_padding, test_labels) = data
    name = "with global attention on <s>" if use_global else "without global attention"
    print(f"\n=== Training {name} ===", flush=True)
    classifier = build_classifier(args, vocabulary_size)
    batches = -(-len(train_labels) // args.batch_size)
    steps = None if args.steps is None else min(args.steps, batches)
    started = time.time()
    classifier.fit(
        features(train_ids, train_padding, use_global),
        train_labels,
        batch_size=args.batch_size,
        epochs=args.epochs,
        steps_per_epoch=steps,
        verbose=1 if sys.stdout.isatty() else 2,
    )
    logits = classifier.predict(features(test_ids, test_padding, use_global), batch_size=args.batch_size, verbose=0)
    accuracy = float(np.mean(np.argmax(logits, axis=-1) == test_labels))
    print(f"test accuracy {name}: {accuracy:.3f} ({time.time() - started:.0f}s)", flush=True)
    return classifier, logits, accuracy


def main(argv=None):
    return run(parse_args(argv))


def compare(args):
    """Trains the model with and without global attention on the same data.

    The numbers the README states come from here; tests call it with a
    small `args` (see `parse_args`) and assert them.

    Args:
        args: the `argparse.Namespace` of `parse_args`.

    Returns:
        dict with `chance` (1 / classes), `with_global` and
        `without_global` (test accuracies; the latter None with
        `--skip-baseline`), `classifier` (the model with global attention),
        `logits` (its test predictions) and `data` (train and test sets).
    """
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    rng = np.random.default_rng(args.seed)
    data = (
        make_documents(args.train_size, args.length, args.classes, args.markers, VOCABULARY_SIZE, rng),
        make_documents(args.test_size, args.length, args.classes, args.markers, VOCABULARY_SIZE, rng),
    )
    reach = args.layers * args.window
    print(
        f"{args.train_size} training and {args.test_size} test documents of up to {args.length} tokens; "
        f"the label is a marker at least {int(0.8 * args.length) * 3 // 4} tokens from <s>; "
        f"without global attention <s> sees {reach} tokens."
    )
    classifier, logits, accuracy = train_and_evaluate(args, data, True, VOCABULARY_SIZE)
    baseline = None
    if not args.skip_baseline:
        _, _, baseline = train_and_evaluate(args, data, False, VOCABULARY_SIZE)
    return {
        "chance": 1.0 / args.classes,
        "with_global": accuracy,
        "without_global": baseline,
        "classifier": classifier,
        "logits": logits,
        "data": data,
    }


def run(args):
    """Trains, reports, saves and reloads (and exports); returns the exit code.

    `examples/distributed_training.py` calls it inside a data-parallel scope.
    """
    started = time.time()
    result = compare(args)
    import keras

    classifier, logits, data = result["classifier"], result["logits"], result["data"]
    print("\n=== Result ===")
    print(f"chance:                      {result['chance']:.3f}")
    print(f"with global attention:       {result['with_global']:.3f}")
    if result["without_global"] is not None:
        print(f"without global attention:    {result['without_global']:.3f}")

    output = args.output or os.path.join(tempfile.mkdtemp(), "long_document_classifier.keras")
    classifier.save(output)
    restored = keras.models.load_model(output)
    test_ids, test_padding, _ = data[1]
    restored_logits = restored.predict(
        features(test_ids, test_padding, True), batch_size=args.batch_size, verbose=0
    )
    identical = bool(np.array_equal(restored_logits, logits))
    print(f"saved {output}; reloaded predictions identical: {identical}")
    if not identical:
        print("error: the reloaded model predicts differently", file=sys.stderr)
        return 1

    if args.export:
        from keras_longformer.export import export_onnx

        report = export_onnx(restored, args.export, overwrite=True)
        print(report)
    if args.json:
        write_run(args, result, time.time() - started)
    return 0


def write_run(args, result, seconds):
    """The run as JSON: what the README quotes is read back from this by the tests."""
    import datetime
    import json

    run = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python examples/long_document_classification.py " + " ".join(sys.argv[1:]),
        "arguments": {key: value for key, value in vars(args).items() if key not in ("json", "output")},
        "chance": result["chance"], "with_global": result["with_global"],
        "without_global": result["without_global"], "seconds": seconds, "cpu_count": os.cpu_count(),
    }
    with open(args.json, "w") as handle:
        json.dump(run, handle, indent=1)


if __name__ == "__main__":
    sys.exit(main())
