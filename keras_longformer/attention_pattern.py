"""Which keys each query attends, read off the op itself, and its picture.

`attention_pattern` runs `longformer_attention` with all-zero queries and keys
(every score equal) and one-hot values: query `i`'s output is then `1 / |S_i|`
on exactly the keys `S_i` it attends and 0 elsewhere. The pattern is the op's
own behaviour, not a re-derivation of its rules. It builds a `[T, T]` array,
so it is for pictures and checks (`length <= 2048`), never for a model.
"""

import numpy as np

MAX_LENGTH = 2048


def attention_pattern(length, *, window, dilation=1, causal=False, global_positions=()):
    """`[T, T]` bool: `pattern[i, j]` is true when query `i` attends key `j`.

    Args:
        length: int in `[1, 2048]`, the sequence length `T`.
        window: int >= 0, the one-sided window.
        dilation: int >= 1.
        causal: bool.
        global_positions: positions of the global tokens.

    Returns:
        A `[T, T]` numpy bool array.

    Example:

    >>> attention_pattern(16, window=2, global_positions=[0]).sum(axis=1)[:4]
    array([16,  4,  5,  6])
    """
    from keras import ops

    from keras_longformer.ops import longformer_attention

    if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= MAX_LENGTH:
        raise ValueError(f"`length` must be an int in [1, {MAX_LENGTH}] (a picture builds [T, T]). "
                         f"Received: length={length!r}")
    positions = list(global_positions)
    if any(not isinstance(p, int) or not 0 <= p < length for p in positions):
        raise ValueError(f"`global_positions` must be ints in [0, {length}). "
                         f"Received: global_positions={global_positions!r}")
    zeros = np.zeros((1, length, 1, length), "float32")
    one_hot = np.eye(length, dtype="float32")[None, :, None, :]
    global_mask = np.zeros((1, length), bool)
    global_mask[0, positions] = True
    out = longformer_attention(zeros, zeros, one_hot, window=window, dilation=dilation,
                               causal=causal, global_mask=global_mask)
    return ops.convert_to_numpy(out)[0, :, 0, :] > 0


def plot_attention_pattern(path, length=48, *, window=4, dilation=1, causal=False,
                           global_positions=(0,)):
    """Writes a PNG of `attention_pattern` (queries down, keys across) to `path`.

    Returns:
        `path`.
    """
    from matplotlib.figure import Figure

    pattern = attention_pattern(length, window=window, dilation=dilation, causal=causal,
                                global_positions=global_positions)
    figure = Figure(figsize=(4.2, 4.4), layout="constrained")
    axes = figure.subplots()
    axes.imshow(pattern, cmap="Blues", interpolation="nearest")
    globals_text = ", ".join(str(p) for p in global_positions) or "none"
    axes.set_title(f"{length} tokens, window {window}, dilation {dilation}\n"
                   f"global: {globals_text}{', causal' if causal else ''}", fontsize=9)
    axes.set_xlabel("key")
    axes.set_ylabel("query")
    figure.savefig(path, dpi=100)
    return path
