"""Benchmark behind `keras-longformer bench`: our layer against its peers.

Every peer runs in the same process on the same inputs, and results are
reported as seconds and as ratios to our layer, so numbers from different
machines compare by ratio. Peers:

- `keras_longformer`: `LongformerSelfAttention` in a `tf.function`.
- `keras_mha_sliding`: `keras.layers.MultiHeadAttention(sliding_window=
  window + 1)` in a `tf.function` (same band, but a dense `[T, T]` mask).
- `hf_torch`: Hugging Face's PyTorch `LongformerSelfAttention` (when torch
  and transformers are installed; it needs `T` a multiple of `2 * window`).

One token (the first) is global for the Longformer peers. Timings are the
median of `repeats` runs after one warm-up.
"""

import argparse
import statistics
import time

import numpy as np


def _median_seconds(fn, repeats):
    fn()  # warm-up: tracing, allocation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _ours(x, global_mask, heads, window):
    import tensorflow as tf

    from keras_longformer.layers import LongformerSelfAttention

    layer = LongformerSelfAttention(heads, x.shape[-1] // heads, window=window)
    run = tf.function(lambda: layer(x, global_mask=global_mask))
    return lambda: run().numpy()


def _keras_mha(x, heads, window):
    import keras
    import tensorflow as tf

    layer = keras.layers.MultiHeadAttention(
        heads, x.shape[-1] // heads, sliding_window=window + 1
    )
    run = tf.function(lambda: layer(x, x))
    return lambda: run().numpy()


def _hf_torch(x, global_mask, heads, window):
    import torch
    from transformers import LongformerConfig
    from transformers.models.longformer import modeling_longformer

    if x.shape[1] % (2 * window):
        return None
    config = LongformerConfig(
        hidden_size=x.shape[-1],
        num_attention_heads=heads,
        attention_window=[2 * window],
        attention_probs_dropout_prob=0.0,
    )
    layer = modeling_longformer.LongformerSelfAttention(config, layer_id=0).eval()
    hidden = torch.from_numpy(x)
    mask = torch.from_numpy(global_mask.astype("float32") * 10000.0)
    is_global = mask > 0

    def run():
        with torch.no_grad():
            return layer(
                hidden,
                attention_mask=mask,
                is_index_masked=mask < 0,
                is_index_global_attn=is_global,
                is_global_attn=bool(is_global.any()),
            )[0]

    return run


def run_benchmark(
    lengths=(4096,), hidden=768, heads=12, window=256, batch=1, repeats=5, peers=None
):
    """Times every available peer at each length.

    Returns:
        A list of dicts `{"length", "peer", "seconds", "ratio"}`, where
        `ratio` is the peer's time over ours (above 1: we are faster), or
        `{"length", "peer", "skipped"}` when a peer cannot run.
    """
    peers = peers or ("keras_longformer", "keras_mha_sliding", "hf_torch")
    rows = []
    rng = np.random.default_rng(0)
    for length in lengths:
        x = rng.standard_normal((batch, length, hidden)).astype("float32")
        global_mask = np.zeros((batch, length), bool)
        global_mask[:, 0] = True
        results = {}
        for peer in peers:
            try:
                if peer == "keras_longformer":
                    fn = _ours(x, global_mask, heads, window)
                elif peer == "keras_mha_sliding":
                    fn = _keras_mha(x, heads, window)
                elif peer == "hf_torch":
                    fn = _hf_torch(x, global_mask, heads, window)
                else:
                    raise ValueError(f"Unknown peer. Received: peer={peer!r}")
                if fn is None:
                    raise RuntimeError(f"length must be a multiple of {2 * window}")
                results[peer] = _median_seconds(fn, repeats)
            except (ImportError, RuntimeError, MemoryError) as error:
                rows.append(dict(length=length, peer=peer, skipped=str(error)))
        ours = results.get("keras_longformer")
        for peer, seconds in results.items():
            ratio = seconds / ours if ours else None
            rows.append(dict(length=length, peer=peer, seconds=seconds, ratio=ratio))
    return rows


def format_rows(rows):
    lines = [f"{'length':>8}  {'peer':<20} {'seconds':>9}  {'time / ours':>11}"]
    for row in rows:
        if "skipped" in row:
            lines.append(f"{row['length']:>8}  {row['peer']:<20} skipped: {row['skipped']}")
        else:
            ratio = "" if row["ratio"] is None else f"{row['ratio']:.2f}x"
            lines.append(
                f"{row['length']:>8}  {row['peer']:<20} {row['seconds']:>9.4f}  {ratio:>11}"
            )
    return "\n".join(lines)


def add_arguments(parser):
    parser.add_argument("--lengths", default="4096", help="comma-separated lengths")
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--window", type=int, default=256, help="one-sided window")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--peers",
        default="keras_longformer,keras_mha_sliding,hf_torch",
        help="comma-separated subset of keras_longformer,keras_mha_sliding,hf_torch",
    )


def run_from_arguments(args):
    rows = run_benchmark(
        lengths=[int(n) for n in args.lengths.split(",")],
        hidden=args.hidden,
        heads=args.heads,
        window=args.window,
        batch=args.batch,
        repeats=args.repeats,
        peers=tuple(args.peers.split(",")),
    )
    print(format_rows(rows))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    run_from_arguments(parser.parse_args(argv))


if __name__ == "__main__":
    main()
