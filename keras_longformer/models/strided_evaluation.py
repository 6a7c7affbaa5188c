"""Bits per token over a long text, scored as the paper scored its character LMs.

Section 4 of the paper evaluates on sequences of 32,256 tokens moved 512 at
a time, each sequence scoring only its last 512 tokens: every token is
scored once, with up to `sequence_length - 1` tokens of context, and no
token is scored with less than `sequence_length - stride` (but the first
window's, which scores all of its tokens).

Shapes: `N` tokens of the text, `L` = `sequence_length`, `S` = `stride`,
`V` vocabulary size.
"""

import math

import numpy as np
from keras import ops


def scored_windows(num_tokens, sequence_length, stride):
    """`(start, end, first_scored)` of every window over `num_tokens` tokens.

    Window `k` reads tokens `[start, end)` and scores (predicts) the tokens
    `[first_scored, end)`: the first window `[0, L)` scores tokens `1 ..
    L - 1` (token 0 has no context), window `k >= 1` ends at `L + k * S`
    (at most `N`) and scores its last `S` tokens (fewer for a last, shorter
    step).
    """
    first_end = min(sequence_length, num_tokens)
    windows = [(0, first_end, 1)]
    end = first_end
    while end < num_tokens:
        new_end = min(end + stride, num_tokens)
        windows.append((new_end - sequence_length, new_end, end))
        end = new_end
    return windows


def _check(token_ids, sequence_length, stride):
    for name, value in (("sequence_length", sequence_length), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be an int >= 1. Received: {name}={value!r}")
    if sequence_length < 2:
        raise ValueError(f"`sequence_length` must be >= 2 (one token of context). Received: {sequence_length}")
    if stride >= sequence_length:
        raise ValueError(
            "`stride` must be below `sequence_length`: a window scores its last `stride` "
            "tokens, each with at least `sequence_length - stride` tokens of context "
            f"(a larger stride would skip tokens). Received: stride={stride}, "
            f"sequence_length={sequence_length}"
        )
    token_ids = np.asarray(token_ids)
    if token_ids.ndim != 1:
        raise ValueError(f"`token_ids` must be one text, a 1-D array. Received: shape {token_ids.shape}")
    if len(token_ids) < sequence_length:
        raise ValueError(
            f"The text has {len(token_ids)} tokens, shorter than one window "
            f"(sequence_length={sequence_length}): score it with a smaller sequence_length."
        )
    return token_ids


def strided_bits_per_token(causal_lm, token_ids, sequence_length, stride, batch_size=1):
    """Mean bits per scored token of `causal_lm` over one long text.

    Args:
        causal_lm: a `LongformerCausalLM` (its decoder runs on the scored
            positions only), or any model taking the backbone's feature
            dict and returning `[B, T, V]` next-token logits.
        token_ids: `[N]` int array, the whole text.
        sequence_length: int >= 2, tokens each window reads (at most the
            model's `max_sequence_length`).
        stride: int in `[1, sequence_length - 1]`, tokens each window
            moves and scores.
        batch_size: int, windows per model call.

    Returns:
        `(bits_per_token, num_scored)`: the mean of `-log2 p(token | context)`
        over the `N - 1` scored tokens, and that count.

    Raises:
        ValueError: `stride >= sequence_length`, a text shorter than one
            window, a non-positive size.

    Example:

    >>> bits, count = strided_bits_per_token(lm, ids, sequence_length=32256, stride=512)
    """
    token_ids = _check(token_ids, sequence_length, stride)
    windows = scored_windows(len(token_ids), sequence_length, stride)
    total = 0.0
    # Every window reads `sequence_length` tokens (the text has at least
    # that many), so any of them batch together.
    for first in range(0, len(windows), batch_size):
        batch = windows[first : first + batch_size]
        ids = np.stack([token_ids[start:end] for start, end, _ in batch]).astype("int32")
        # Logit j of the window predicts its token j + 1.
        targets = [np.arange(first_scored, end) for _, end, first_scored in batch]
        positions = [row_targets - start - 1 for row_targets, (start, _, _) in zip(targets, batch)]
        for row_targets, log_probs in zip(targets, _scored_log_probs(causal_lm, ids, positions)):
            total -= float(np.sum(log_probs[np.arange(len(row_targets)), token_ids[row_targets]]))
    num_scored = len(token_ids) - 1
    return total / num_scored / math.log(2), num_scored


def _scored_log_probs(causal_lm, ids, positions):
    """Per row of `ids`, the next-token log-probabilities `[len(p), V]` at its
    `positions` only. A `LongformerCausalLM`'s decoder runs on those rows
    alone: the logits of a whole 32,256-token window over a 50,265-token
    vocabulary would take 6 GiB to score 512 of them."""
    features = {"token_ids": ids, "padding_mask": np.ones_like(ids), "global_mask": np.zeros_like(ids)}
    if hasattr(causal_lm, "backbone") and hasattr(causal_lm, "decoder"):
        hidden = causal_lm.backbone(features)["sequence_output"]
        logits = [causal_lm.decoder(ops.take(hidden[row], p, axis=0)[None])[0]
                  for row, p in enumerate(positions)]
    else:
        full = causal_lm(features)
        logits = [ops.take(full[row], p, axis=0) for row, p in enumerate(positions)]
    return [ops.convert_to_numpy(ops.log_softmax(ops.cast(x, "float32"), axis=-1)) for x in logits]
