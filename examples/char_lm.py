"""Character-level causal Longformer on any text file, in bits per character.

    python examples/char_lm.py --text-file book.txt

Trains `LongformerCausalLM` with the paper's recipe for character language
modelling, scaled down: causal sliding windows that grow from the bottom
layer to the top (`--min-window` doubling per layer), and dilation only on
two heads of the upper layers, increasing with depth. The last
`--holdout` fraction of the file is held out; the script reports bits per
character there, next to the entropy of the training text's unigram
distribution (what a model without context would score). Characters
unseen in training map to one unknown id.

Beltagy, Peters, Cohan, "Longformer: The Long-Document Transformer", 2020,
section 4 (https://arxiv.org/abs/2004.05150).
"""

import argparse
import math
import os
import sys
import time

import numpy as np

PAD, UNKNOWN = 0, 1


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--text-file", required=True, help="a UTF-8 text file")
    parser.add_argument("--max-chars", type=int, default=2_000_000, help="read at most this many characters")
    parser.add_argument("--holdout", type=float, default=0.1, help="fraction of the text held out")
    parser.add_argument("--length", type=int, default=512, help="characters per training sequence")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--min-window", type=int, default=8, help="one-sided window of the bottom layer, doubled per layer")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=None, help="steps per epoch (default: the whole training text)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sample-length", type=int, default=256,
        help="characters of text to generate after training, prompt included (0: none; at most --length)",
    )
    parser.add_argument("--quick", action="store_true", help="a tiny run for tests")
    args = parser.parse_args(argv)
    if args.quick:
        args.length = min(args.length, 64)
        args.layers = min(args.layers, 2)
        args.hidden = min(args.hidden, 16)
        args.heads = min(args.heads, 2)
        args.min_window = min(args.min_window, 4)
        args.epochs = min(args.epochs, 1)
        args.steps = min(args.steps or 20, 20)
        args.sample_length = min(args.sample_length, 48)
    if not 0 < args.holdout < 1:
        parser.error(f"--holdout must be in (0, 1). Received: {args.holdout}")
    if args.sample_length < 0:
        parser.error(f"--sample-length must be >= 0. Received: {args.sample_length}")
    if args.heads < 2:
        parser.error(f"--heads must be >= 2 (two heads are dilated). Received: {args.heads}")
    return args


def window_schedule(num_layers, num_heads, min_window, length):
    """Windows doubling per layer; dilation on two heads of the upper half.

    Returns `(windows, dilations)`: one window per layer, and per layer an
    int 1 (lower half) or a list with `num_heads - 2` ones followed by two
    heads dilated by 2, 3, ... in the upper layers.
    """
    windows = [min(min_window * 2**i, length) for i in range(num_layers)]
    dilations = []
    for i in range(num_layers):
        upper = i - num_layers // 2
        if upper < 0:
            dilations.append(1)
        else:
            dilations.append([1] * (num_heads - 2) + [2 + upper] * 2)
    return windows, dilations


def encode(text, vocabulary):
    return np.array([vocabulary.get(c, UNKNOWN) for c in text], "int32")


def chunks(ids, length):
    """Non-overlapping `[n, length + 1]` windows (inputs and shifted targets)."""
    count = (len(ids) - 1) // length
    if count < 1:
        raise SystemExit(f"The text is too short for --length {length}: {len(ids)} characters.")
    rows = [ids[i * length : i * length + length + 1] for i in range(count)]
    return np.stack(rows)


def as_features(rows):
    inputs = rows[:, :-1]
    return (
        {
            "token_ids": inputs,
            "padding_mask": np.ones_like(inputs),
            "global_mask": np.zeros_like(inputs),
        },
        rows[:, 1:],
    )


def train_and_evaluate(args):
    """Trains on the text file of `args` and scores the held-out part.

    The numbers the README states come from here; tests call it with a
    small `args` (see `parse_args`) and assert them.

    Args:
        args: the `argparse.Namespace` of `parse_args`.

    Returns:
        dict with `bits_per_character` (held out), `unigram_entropy` (bits
        per held-out character of the training text's unigram distribution:
        the score of a model without context) and `uniform` (log2 of the
        number of distinct characters), and `sample`: `(prompt, continuation)`
        generated from the start of the held-out text (None when
        `--sample-length` is 0).
    """
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from keras_longformer.models import LongformerBackbone
    from keras_longformer.models import LongformerCausalLM
    from keras_longformer.models import bits_per_token

    with open(args.text_file, encoding="utf-8", errors="replace") as file:
        text = file.read(args.max_chars)
    split = int(len(text) * (1 - args.holdout))
    train_text, test_text = text[:split], text[split:]
    characters = sorted(set(train_text))
    vocabulary = {c: i + 2 for i, c in enumerate(characters)}
    vocabulary_size = len(characters) + 2
    train_ids, test_ids = encode(train_text, vocabulary), encode(test_text, vocabulary)
    test_length = min(args.length, len(test_ids) - 1)
    x_train, y_train = as_features(chunks(train_ids, args.length))
    x_test, y_test = as_features(chunks(test_ids, test_length))

    counts = np.bincount(train_ids, minlength=vocabulary_size).astype("float64")
    unigram = counts / counts.sum()
    test_unigram = -np.mean(np.log2(np.maximum(unigram[test_ids], 1e-12)))

    windows, dilations = window_schedule(args.layers, args.heads, args.min_window, args.length)
    print(
        f"{len(train_text)} training and {len(test_text)} held-out characters, "
        f"{vocabulary_size - 2} distinct; windows per layer {windows}, dilation per layer {dilations}"
    )
    keras.utils.set_random_seed(args.seed)
    backbone = LongformerBackbone(
        vocabulary_size=vocabulary_size,
        num_layers=args.layers,
        num_heads=args.heads,
        hidden_dim=args.hidden,
        intermediate_dim=4 * args.hidden,
        window=windows,
        dilation=dilations,
        causal=True,
        max_sequence_length=args.length,
        pad_token_id=PAD,
        dropout=0.0,
        attention_dropout=0.0,
    )
    model = LongformerCausalLM(backbone)
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=args.learning_rate, weight_decay=0.01, global_clipnorm=1.0)
    )
    batches = -(-len(y_train) // args.batch_size)
    steps = None if args.steps is None else min(args.steps, batches)
    started = time.time()
    model.fit(
        x_train,
        y_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        steps_per_epoch=steps,
        shuffle=True,
        verbose=1 if sys.stdout.isatty() else 2,
    )
    logits = model.predict(x_test, batch_size=args.batch_size, verbose=0)
    print(f"trained in {time.time() - started:.0f}s")
    sample = None
    if args.sample_length:
        sample = generate_sample(model, test_ids, min(args.sample_length, args.length), vocabulary)
    return {
        "sample": sample,
        "bits_per_character": float(bits_per_token(logits, y_test)),
        "unigram_entropy": float(test_unigram),
        "uniform": math.log2(vocabulary_size - 2),
    }


def generate_sample(model, prompt_source, length, vocabulary):
    """Continues the first quarter of `length` characters of `prompt_source`.

    Returns:
        `(prompt, continuation)` strings; `length` characters in all (the
        model's top-k sampler, seeded by `--seed`).
    """
    prompt = np.asarray(prompt_source[: max(1, length // 4)], "int32")
    token_ids = np.full((1, length), PAD, "int32")
    token_ids[0, : len(prompt)] = prompt
    padding_mask = np.arange(length)[None, :] < len(prompt)
    generated = model.generate({"token_ids": token_ids, "padding_mask": padding_mask}, stop_token_ids=None)
    ids = np.asarray(generated["token_ids"])[0]
    characters = {i: c for c, i in vocabulary.items()}
    text = "".join(characters.get(int(i), "\ufffd") for i in ids)
    return text[: len(prompt)], text[len(prompt) :]


def main(argv=None):
    result = train_and_evaluate(parse_args(argv))
    bpc = result["bits_per_character"]
    print(f"held-out bits per character: {bpc:.3f}")
    print(
        f"unigram entropy (no context): {result['unigram_entropy']:.3f}; "
        f"uniform: {result['uniform']:.3f}"
    )
    if result["sample"] is not None:
        prompt, continuation = result["sample"]
        print(f"sample: {prompt!r} -> {continuation!r}")
    if not math.isfinite(bpc):
        print("error: the loss is not finite", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
