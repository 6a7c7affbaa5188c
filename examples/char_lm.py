"""Character-level causal Longformer in bits per character, trained in phases.

    python examples/char_lm.py                          # the standard library's sources
    python examples/char_lm.py --text-file book.txt --phases 3 --eval-length 32256 --eval-stride 512

Trains `LongformerCausalLM` with the paper's recipe for character language
modelling, scaled down: causal sliding windows that grow from the bottom
layer to the top (`--min-window` doubling per layer), dilation only on two
heads of the upper layers, increasing with depth, and a staged schedule:
each of `--phases` phases doubles the windows and the sequence length and
halves the learning rate, keeping the weights (`with_attention`). Without
`--text-file` it reads the Python standard library's sources (every
installation has them; nothing is downloaded), holding out every tenth
file; with one, the last `--holdout` fraction.

It reports held-out bits per character at the last phase's length, next to
the entropy of the training text's unigram distribution (what a model
without context would score), and, as the paper evaluated, over
`--eval-length`-character windows moved `--eval-stride` at a time, each
scoring only its last `--eval-stride` characters, so every character has up
to `--eval-length` of context (positions beyond the trained length are
tiled, as `extend_position_embeddings` does). Characters unseen in training
map to one unknown id.

Beltagy, Peters, Cohan, "Longformer: The Long-Document Transformer", 2020,
section 4 (https://arxiv.org/abs/2004.05150).
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np

PAD, UNKNOWN = 0, 1


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--text-file", default=None,
                        help="a UTF-8 text file (default: the Python standard library's sources)")
    parser.add_argument("--max-chars", type=int, default=2_000_000, help="read at most this many characters")
    parser.add_argument("--holdout", type=float, default=0.1, help="fraction of --text-file held out")
    parser.add_argument("--length", type=int, default=512, help="characters per training sequence in the first phase")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--min-window", type=int, default=8, help="one-sided window of the bottom layer, doubled per layer")
    parser.add_argument("--phases", type=int, default=1,
                        help="training phases; each multiplies windows and length by the growth "
                        "factors and halves the learning rate (the paper: 5)")
    parser.add_argument("--window-growth", type=int, default=2, help="window factor per phase")
    parser.add_argument("--length-growth", type=int, default=2, help="sequence-length factor per phase")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per phase")
    parser.add_argument("--steps", type=int, default=None, help="steps per epoch (default: the whole training text)")
    parser.add_argument("--batch-size", type=int, default=16,
                        help="sequences per batch in the first phase (divided by the length growth "
                        "per phase: the same characters per step)")
    parser.add_argument("--learning-rate", type=float, default=2e-3, help="of the first phase")
    parser.add_argument("--eval-length", type=int, default=None,
                        help="characters each evaluation window reads (default: the last phase's length)")
    parser.add_argument("--eval-stride", type=int, default=None,
                        help="characters each evaluation window moves and scores (default: half "
                        "of --eval-length)")
    parser.add_argument("--eval-chars", type=int, default=200_000,
                        help="held-out characters the strided evaluation reads at most")
    parser.add_argument("--json", default=None, help="also write the result to this JSON file")
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


def phase_schedule(length, min_window, learning_rate, batch_size, phases,
                   window_growth=2, length_growth=2):
    """The staged schedule: per phase, its length, bottom window, learning
    rate and batch size (the paper's section 4, scaled down).

    Raises:
        ValueError: `phases < 1`, or a growth factor below 1: a phase would
            shrink the window (the trained layers would lose the context
            they learned to use) or the length (its trained positions).
    """
    if isinstance(phases, bool) or not isinstance(phases, int) or phases < 1:
        raise ValueError(f"`phases` must be an int >= 1. Received: phases={phases!r}")
    if window_growth < 1:
        raise ValueError(
            f"`window_growth` must be >= 1: a next phase may not shrink the window below "
            f"what the trained model sees (window {min_window} -> {min_window * window_growth}). "
            f"Received: window_growth={window_growth!r}"
        )
    if length_growth < 1:
        raise ValueError(
            f"`length_growth` must be >= 1: a next phase may not drop trained positions "
            f"(length {length} -> {length * length_growth}). Received: length_growth={length_growth!r}"
        )
    return [
        dict(phase=p + 1, length=length * length_growth**p, min_window=min_window * window_growth**p,
             learning_rate=learning_rate / 2**p, batch_size=max(1, batch_size // length_growth**p))
        for p in range(phases)
    ]


def load_texts(args):
    """`(train_text, held_out_text)`: the file split by `--holdout`, or the
    standard library's sources (every tenth file held out)."""
    if args.text_file is None:
        from keras_longformer.corpus import standard_library_documents

        train, held_out = standard_library_documents()
        return "\n".join(train)[: args.max_chars], "\n".join(held_out)[: args.max_chars]
    with open(args.text_file, encoding="utf-8", errors="replace") as file:
        text = file.read(args.max_chars)
    split = int(len(text) * (1 - args.holdout))
    return text[:split], text[split:]


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
    """Trains in phases on the text of `args` and scores the held-out part.

    The numbers the README states come from here; tests call it with a
    small `args` (see `parse_args`) and assert them.

    Args:
        args: the `argparse.Namespace` of `parse_args`.

    Returns:
        dict with `bits_per_character` (held out, in sequences of the last
        phase's length), `unigram_entropy` (bits per held-out character of
        the training text's unigram distribution: the score of a model
        without context), `uniform` (log2 of the number of distinct
        characters), `long_evaluation` (`bits_per_character`,
        `scored_characters`, `eval_length`, `eval_stride`: the strided
        evaluation), `phases` (each phase's schedule and last loss) and
        `sample`: `(prompt, continuation)` generated from the start of the
        held-out text (None when `--sample-length` is 0).
    """
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from keras_longformer.models import bits_per_token
    from keras_longformer.models import strided_bits_per_token

    schedule = phase_schedule(args.length, args.min_window, args.learning_rate, args.batch_size,
                              args.phases, args.window_growth, args.length_growth)
    final_length = schedule[-1]["length"]
    eval_length = args.eval_length or final_length
    eval_stride = args.eval_stride or max(1, eval_length // 2)
    if eval_stride >= eval_length:
        raise ValueError(
            f"`--eval-stride` must be smaller than `--eval-length` {eval_length}. "
            f"Received: --eval-stride={eval_stride}"
        )
    train_text, test_text = load_texts(args)
    characters = sorted(set(train_text))
    vocabulary = {c: i + 2 for i, c in enumerate(characters)}
    vocabulary_size = len(characters) + 2
    train_ids, test_ids = encode(train_text, vocabulary), encode(test_text, vocabulary)
    long_ids = test_ids[: max(args.eval_chars, eval_length)]
    if len(long_ids) < eval_length:
        raise ValueError(
            f"The held-out text has {len(long_ids)} characters, shorter than one evaluation "
            f"window. Received: --eval-length={eval_length}"
        )
    counts = np.bincount(train_ids, minlength=vocabulary_size).astype("float64")
    unigram = counts / counts.sum()
    test_unigram = -np.mean(np.log2(np.maximum(unigram[test_ids], 1e-12)))
    print(f"{len(train_text)} training and {len(test_text)} held-out characters, "
          f"{vocabulary_size - 2} distinct")

    keras.utils.set_random_seed(args.seed)
    model, started, phases = None, time.time(), []
    for phase in schedule:
        windows, dilations = window_schedule(args.layers, args.heads, phase["min_window"], phase["length"])
        print(f"phase {phase['phase']}/{len(schedule)}: length {phase['length']}, windows per layer "
              f"{windows}, dilation per layer {dilations}, learning rate {phase['learning_rate']:g}")
        if model is None:
            model = build_model(args, vocabulary_size, windows, dilations, phase["length"])
        else:
            model = model.with_attention(window=windows, max_sequence_length=phase["length"])
        model.compile(optimizer=keras.optimizers.AdamW(
            learning_rate=phase["learning_rate"], weight_decay=0.01, global_clipnorm=1.0))
        x_train, y_train = as_features(epochs_of_rows(chunks(train_ids, phase["length"]),
                                                      phase["batch_size"], args))
        history = model.fit(
            x_train, y_train, batch_size=phase["batch_size"], epochs=args.epochs,
            steps_per_epoch=args.steps, shuffle=True, verbose=1 if sys.stdout.isatty() else 2,
        )
        phases.append(dict(phase, windows=windows, loss=float(history.history["loss"][-1])))
    print(f"trained in {time.time() - started:.0f}s")

    x_test, y_test = as_features(chunks(test_ids, min(final_length, len(test_ids) - 1)))
    logits = model.predict(x_test, batch_size=schedule[-1]["batch_size"], verbose=0)
    started = time.time()
    evaluator = model if eval_length <= final_length else model.with_attention(max_sequence_length=eval_length)
    long_bits, scored = strided_bits_per_token(evaluator, long_ids, eval_length, eval_stride)
    print(f"strided evaluation in {time.time() - started:.0f}s")
    sample = None
    if args.sample_length:
        sample = generate_sample(model, test_ids, min(args.sample_length, final_length), vocabulary)
    return {
        "sample": sample,
        "bits_per_character": float(bits_per_token(logits, y_test)),
        "unigram_entropy": float(test_unigram),
        "uniform": math.log2(vocabulary_size - 2),
        "long_evaluation": dict(bits_per_character=float(long_bits), scored_characters=int(scored),
                                eval_length=eval_length, eval_stride=eval_stride),
        "phases": phases,
    }


def epochs_of_rows(rows, batch_size, args):
    """The training rows, repeated (each copy shuffled) when `--steps` x
    `--epochs` batches need more than one pass: with `steps_per_epoch`,
    Keras draws every epoch from one iterator over the arrays, and stops
    training where it runs out."""
    if args.steps is None:
        return rows
    needed = args.steps * args.epochs * batch_size
    copies = -(-needed // len(rows))
    rng = np.random.default_rng(args.seed)
    return np.concatenate([rows[rng.permutation(len(rows))] for _ in range(copies)])[:needed]


def build_model(args, vocabulary_size, windows, dilations, length):
    from keras_longformer.models import LongformerBackbone
    from keras_longformer.models import LongformerCausalLM

    backbone = LongformerBackbone(
        vocabulary_size=vocabulary_size,
        num_layers=args.layers,
        num_heads=args.heads,
        hidden_dim=args.hidden,
        intermediate_dim=4 * args.hidden,
        window=windows,
        dilation=dilations,
        causal=True,
        max_sequence_length=length,
        pad_token_id=PAD,
        dropout=0.0,
        attention_dropout=0.0,
    )
    return LongformerCausalLM(backbone)


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
    args = parse_args(argv)
    result = train_and_evaluate(args)
    bpc = result["bits_per_character"]
    print(f"held-out bits per character: {bpc:.3f}")
    long = result["long_evaluation"]
    print(
        f"strided bits per character: {long['bits_per_character']:.3f} over "
        f"{long['scored_characters']} characters ({long['eval_length']}-character windows, "
        f"stride {long['eval_stride']})"
    )
    print(
        f"unigram entropy (no context): {result['unigram_entropy']:.3f}; "
        f"uniform: {result['uniform']:.3f}"
    )
    if result["sample"] is not None:
        prompt, continuation = result["sample"]
        print(f"sample: {prompt!r} -> {continuation!r}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(dict(result, command="python examples/char_lm.py " + " ".join(argv or sys.argv[1:]),
                           date=time.strftime("%Y-%m-%d")), handle, indent=1)
    if not math.isfinite(bpc):
        print("error: the loss is not finite", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
