"""A long masked LM from a short one: the Longformer paper's recipe, scaled down.

    python examples/pretrain_long.py                    # a few minutes on 2 CPU cores
    python examples/pretrain_long.py --quick            # a tiny run, for tests

1. Trains a short RoBERTa (keras-hub's `RobertaMaskedLM`, full attention
   over `--short-length` tokens) on the standard library's sources, one
   file per document (real text every Python installation carries).
2. Makes it `--scale` times longer with `keras_longformer.convert_to_long`:
   positions tiled, a sliding window of half the short length (one-sided;
   the paper's 512 two-sided for RoBERTa's 512), global projections copied.
3. Continues masked-LM training on long documents with
   `LongformerMaskedLMPreprocessor` (dynamic masking), then copies the
   trained local projections to the global ones again.

It reports masked-LM bits per token on held-out long documents, every
model on the same masked tokens: the short model on slices of its own
length, the long model with random new positions, with copied positions,
and after continued training: the shape of the paper's Table 5.

`--size base` gives the paper's optimizer for base-size models: AdamW,
learning rate 3e-5, 500 warm-up steps, then polynomial decay of power 3,
gradient clipping at 1; `--accumulation N` makes the paper's large batches
from small ones (Keras optimizers' `gradient_accumulation_steps`).

Beltagy, Peters, Cohan, "Longformer: The Long-Document Transformer", 2020,
section 5 and Table 5 (https://arxiv.org/abs/2004.05150).
"""

import argparse
import json
import math
import os
import sys
import tempfile
import time

import numpy as np

MASK_RATE = 0.15
QUICK = dict(
    short_length=32, scale=4, vocabulary_size=400, layers=2, heads=2, hidden=32,
    short_steps=150, long_steps=40, eval_documents=8,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--short-length", type=int, default=64, help="tokens the short model reads")
    parser.add_argument("--scale", type=int, default=4, help="the long model reads scale x short-length tokens")
    parser.add_argument("--vocabulary-size", type=int, default=1000, help="byte-level BPE trained here")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--short-steps", type=int, default=3000, help="training steps of the short model")
    parser.add_argument("--long-steps", type=int, default=600, help="continued training steps at length")
    parser.add_argument("--batch-size", type=int, default=32, help="short-model batch; the long one is batch / scale")
    parser.add_argument("--size", choices=("small", "base"), default="small",
                        help="base: the paper's optimizer (lr 3e-5, 500 warm-up steps)")
    parser.add_argument("--learning-rate", type=float, default=None, help="default 1e-3 (small), 3e-5 (base)")
    parser.add_argument("--decay-power", type=float, default=None, help="default 1 (small), 3 (base)")
    parser.add_argument("--warmup-steps", type=int, default=None, help="default 10%% of the steps (small), 500 (base)")
    parser.add_argument("--accumulation", type=int, default=1, help="gradient_accumulation_steps")
    parser.add_argument("--eval-documents", type=int, default=48, help="held-out long documents scored")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    parser.add_argument("--quick", action="store_true", help="a tiny run for tests (its sizes are defaults: flags still apply)")
    if "--quick" in (sys.argv[1:] if argv is None else argv):
        parser.set_defaults(**QUICK)
    args = parser.parse_args(argv)
    if args.short_length < 8 or args.scale < 2:
        parser.error(f"--short-length must be >= 8 and --scale >= 2. Received: {args.short_length}, {args.scale}")
    if args.size == "base":
        args.learning_rate = args.learning_rate or 3e-5
        args.warmup_steps = 500 if args.warmup_steps is None else args.warmup_steps
        args.decay_power = 3.0 if args.decay_power is None else args.decay_power
    args.learning_rate = args.learning_rate or 1e-3
    args.decay_power = 1.0 if args.decay_power is None else args.decay_power
    return args


# === Optimizer: the paper's schedule ===


def paper_optimizer(learning_rate, total_steps, warmup_steps, accumulation=1, power=3.0):
    """AdamW with linear warm-up then polynomial decay (the paper's power 3), clipped at 1."""
    import keras

    @keras.saving.register_keras_serializable(package="pretrain_long")
    class WarmupPolynomialDecay(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            step = keras.ops.cast(step, "float32")
            warm = step / max(warmup_steps, 1)
            left = keras.ops.maximum(0.0, 1.0 - (step - warmup_steps) / max(total_steps - warmup_steps, 1))
            return learning_rate * keras.ops.where(step < warmup_steps, warm, left**power)

        def get_config(self):
            return {}

    return keras.optimizers.AdamW(
        learning_rate=WarmupPolynomialDecay(), weight_decay=0.01, global_clipnorm=1.0,
        gradient_accumulation_steps=accumulation if accumulation > 1 else None,
    )


# === Data ===


def train_tokenizer(texts, vocabulary_size, directory):
    """A RoBERTa-style byte-level BPE (`vocab.json`, `merges.txt`) trained on `texts`."""
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer(add_prefix_space=False)
    bpe.train_from_iterator(
        texts, vocab_size=vocabulary_size, min_frequency=2,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
    )
    bpe.save_model(directory)
    return os.path.join(directory, "vocab.json"), os.path.join(directory, "merges.txt")


def token_chunks(tokenizer, texts, length):
    """Every document's tokens cut into `[N, length]` chunks (remainders dropped)."""
    chunks = []
    for text in texts:
        ids = np.asarray(tokenizer(text))
        for start in range(0, len(ids) - length + 1, length):
            chunks.append(ids[start : start + length])
    return np.stack(chunks)


def chunk_texts(tokenizer, texts, length):
    """Texts of `length` tokens each (byte-level BPE decodes exactly)."""
    return [str(tokenizer.detokenize(chunk)) for chunk in token_chunks(tokenizer, texts, length)]


def masked_eval_set(tokenizer, texts, content_length, count, seed):
    """Held-out chunks with a fixed 15% of their tokens to predict."""
    chunks = token_chunks(tokenizer, texts, content_length)[:count]
    rng = np.random.default_rng(seed)
    num_masked = max(1, round(MASK_RATE * content_length))
    positions = np.sort(np.stack([rng.choice(content_length, num_masked, replace=False) for _ in chunks]), axis=1)
    return chunks, positions


def masked_inputs(tokenizer, chunks, positions):
    """`<s> chunk </s>` with the chosen tokens replaced by `<mask>`."""
    ids = chunks.copy()
    labels = np.take_along_axis(ids, positions, axis=1)
    np.put_along_axis(ids, positions, tokenizer.mask_token_id, axis=1)
    start = np.full((len(ids), 1), tokenizer.start_token_id)
    end = np.full((len(ids), 1), tokenizer.end_token_id)
    return np.concatenate([start, ids, end], axis=1).astype("int32"), positions + 1, labels


# === Scoring ===


def cross_entropy_bits(logits, labels):
    """Sum of `-log2 p(label)` over the given logits `[..., V]`."""
    logits = np.asarray(logits, "float64")
    logits = logits - logits.max(axis=-1, keepdims=True)
    log_z = np.log(np.exp(logits).sum(axis=-1))
    picked = np.take_along_axis(logits, labels[..., None], axis=-1)[..., 0]
    return float(np.sum(log_z - picked) / math.log(2))


def long_bits(model, tokenizer, chunks, positions, batch_size=4):
    """Bits per masked token of a `LongformerMaskedLM` reading whole chunks."""
    import keras

    total, count = 0.0, 0
    for start in range(0, len(chunks), batch_size):
        ids, mask_positions, labels = masked_inputs(
            tokenizer, chunks[start : start + batch_size], positions[start : start + batch_size]
        )
        logits = model({
            "token_ids": ids, "padding_mask": np.ones_like(ids), "global_mask": np.zeros_like(ids),
            "mask_positions": mask_positions,
        })
        total += cross_entropy_bits(keras.ops.convert_to_numpy(logits), labels)
        count += labels.size
    return total / count


def short_bits(model, tokenizer, chunks, positions, slice_length):
    """Bits per masked token of the short model, each chunk read in slices."""
    import keras

    total, count = 0.0, 0
    for chunk, chunk_positions in zip(chunks, positions):
        for start in range(0, len(chunk), slice_length):
            inside = chunk_positions[(chunk_positions >= start) & (chunk_positions < start + slice_length)]
            if len(inside) == 0:
                continue
            ids, mask_positions, labels = masked_inputs(
                tokenizer, chunk[None, start : start + slice_length], (inside - start)[None]
            )
            logits = model({"token_ids": ids, "padding_mask": np.ones_like(ids), "mask_positions": mask_positions})
            total += cross_entropy_bits(keras.ops.convert_to_numpy(logits), labels)
            count += labels.size
    return total / count


def unigram_bits(tokenizer, texts, chunks, positions):
    """Bits per masked token of the training text's token frequencies (add-one)."""
    counts = np.ones(tokenizer.vocabulary_size())
    for text in texts:
        np.add.at(counts, np.asarray(tokenizer(text)), 1)
    labels = np.take_along_axis(chunks, positions, axis=1)
    return float(-np.mean(np.log2(counts[labels] / counts.sum())))


def with_random_new_positions(long_model, short_rows, seed):
    """A copy of `long_model` whose positions past the short model's are random
    (RoBERTa's initialisation, N(0, 0.02)): the paper's "random" row."""
    import keras

    copy = type(long_model).from_config(long_model.get_config())
    copy.set_weights(long_model.get_weights())
    table = copy.backbone.embeddings.position_embedding.embeddings
    rows = keras.ops.convert_to_numpy(table).copy()
    rows[short_rows:] = np.random.default_rng(seed).normal(0.0, 0.02, rows[short_rows:].shape)
    table.assign(rows)
    return copy


# === The recipe ===


def main(argv=None):
    args = parse_args(argv)
    import keras
    import keras_hub

    import keras_longformer as kl
    from keras_longformer.corpus import standard_library_documents

    keras.utils.set_random_seed(args.seed)
    started = time.time()
    train_texts, held_out_texts = standard_library_documents(min_chars=2000)
    short, long = args.short_length, args.short_length * args.scale
    with tempfile.TemporaryDirectory() as directory:
        vocabulary, merges = train_tokenizer(train_texts, args.vocabulary_size, directory)
        tokenizer = keras_hub.models.RobertaTokenizer(vocabulary=vocabulary, merges=merges)

        # 1. The short model: RoBERTa, full attention over `short` tokens.
        backbone = keras_hub.models.RobertaBackbone(
            vocabulary_size=tokenizer.vocabulary_size(), num_layers=args.layers, num_heads=args.heads,
            hidden_dim=args.hidden, intermediate_dim=4 * args.hidden, max_sequence_length=short, dropout=0.0,
        )
        # Logits only where a token is masked (keras-hub's default is 96 slots).
        preprocessor = keras_hub.models.RobertaMaskedLMPreprocessor(
            tokenizer, sequence_length=short, mask_selection_length=math.ceil(MASK_RATE * short)
        )
        short_model = keras_hub.models.RobertaMaskedLM(backbone, preprocessor=preprocessor)
        steps = args.short_steps
        short_model.compile(
            optimizer=paper_optimizer(
                args.learning_rate, steps, _warmup(args, steps), args.accumulation, args.decay_power
            ),
            weighted_metrics=[],
        )
        short_texts = chunk_texts(tokenizer, train_texts, short - 2)
        print(f"short model: {len(short_texts):,} training sequences of {short} tokens", flush=True)
        # Shuffled by the dataset itself, anew each pass.
        short_model.fit(_repeated(short_texts, args.batch_size, steps), steps_per_epoch=steps, shuffle=False, verbose=2)

        chunks, positions = masked_eval_set(tokenizer, held_out_texts, long - 2, args.eval_documents, args.seed)
        results = {
            "unigram (no context)": unigram_bits(tokenizer, train_texts, chunks, positions),
            "short model, slices of its length": short_bits(short_model, tokenizer, chunks, positions, short - 2),
        }

        # 2. Long: positions tiled, window half the short length, globals copied.
        long_model = kl.convert_to_long(short_model, max_sequence_length=long, window=short // 2)
        reserved = long_model.backbone.pad_token_id + 1
        random_model = with_random_new_positions(long_model, reserved + short, args.seed)
        results["long model, random new positions"] = long_bits(random_model, tokenizer, chunks, positions)
        results["long model, copied positions"] = long_bits(long_model, tokenizer, chunks, positions)

        # 3. Continued masked-LM training on long documents (dynamic masking).
        steps = args.long_steps
        long_batch = max(1, args.batch_size // args.scale)
        long_model.compile(
            optimizer=paper_optimizer(
                args.learning_rate, steps, _warmup(args, steps), args.accumulation, args.decay_power
            ),
            weighted_metrics=[],
        )
        long_texts = chunk_texts(tokenizer, train_texts, long - 2)
        print(f"long model: {len(long_texts):,} training sequences of {long} tokens", flush=True)
        long_model.fit(_repeated(long_texts, long_batch, steps), steps_per_epoch=steps, verbose=2)
        kl.copy_global_projections(long_model)
        results[f"long model, +{steps} steps"] = long_bits(long_model, tokenizer, chunks, positions)

    report = {
        "date": time.strftime("%Y-%m-%d"),
        "command": "python examples/pretrain_long.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "short_length": short, "long_length": long, "window": short // 2,
        "held_out_documents": len(chunks), "masked_tokens": int(positions.size),
        "bits_per_token": results, "seconds": round(time.time() - started, 1),
    }
    print(f"\nmasked-LM bits per token, {len(chunks)} held-out documents of {long} tokens, "
          f"{positions.size:,} masked tokens:")
    for name, bits in results.items():
        print(f"  {name:<36} {bits:.3f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(report, file, indent=1)
    return report


def _warmup(args, steps):
    return args.warmup_steps if args.warmup_steps is not None else max(1, steps // 10)


def _repeated(texts, batch_size, steps):
    """`steps` batches of texts, reshuffled each pass (the preprocessor masks anew each time)."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices(texts).shuffle(len(texts), reshuffle_each_iteration=True)
    return dataset.repeat().batch(batch_size).take(steps)


if __name__ == "__main__":
    main()
