"""Blocked sliding-window kernels: dilation, causality and padding to blocks.

The band of a sliding window is computed block by block, heads first. The
(sub)sequence is cut into blocks of `block_size` queries; block `k` is
scored against one span of keys: the key blocks `k - halo .. k + halo`
(`k - halo .. k` when causal), `halo = ceil(window / block_size)`, followed
by the `G` global keys. A block shorter than the window wastes less: `b`
queries need `b + 2w` keys for `2w + 1` useful ones, so blocks of `w / 2`
score `1.25x` the band where blocks of `w` score `1.5x`, while the
matmuls stay large enough to run near the machine's rate.

Each span is gathered in one copy from a flat key sequence that holds the
global keys, a halo of zeros, the keys and another halo. The scores of a
block, `[block_size, span]`, get one additive mask bias (band, padding,
global slots) and one fused softmax in float32, and the same span of values
is read by one matmul: global columns cost no extra pass over the scores,
and without global tokens there are none. Memory is O(T x window), never
O(T x T). On TensorFlow the heads run one by one (`heads_per_group`).

Dilation `d` is a plain window over the `d` interleaved subsequences
`x[r::d]`, `r = 0 .. d - 1`: the sequence is padded to a multiple of `d`,
reshaped to `[B, T/d, d]` and transposed so that each subsequence becomes
its own batch row.

Every size here may be a Python int (static shapes) or a scalar tensor
(dynamic shapes inside a traced function): the same code traces once for
every batch size and length.
"""

import contextlib

import keras
from keras import ops

from keras_longformer.ops.masks import band_mask, not_after

# Queries per block for long windows: `ceil(window / 2)`, at least this
# many, so that each matmul keeps a few hundred FLOPs per loaded byte.
MIN_BLOCK = 64


def _minimum(a, b):
    if isinstance(a, int) and isinstance(b, int):
        return min(a, b)
    return ops.minimum(a, b)


def _ceil_div(numerator, denominator):
    # Operands are never negative here, so floor division is exact and
    # exports with the same meaning everywhere (unlike `(-n) % block`).
    return (numerator + denominator - 1) // denominator


def target_block_size(window):
    """Queries per block (before capping at the sequence): half the window,
    at least `MIN_BLOCK` (and at most the window when that is shorter)."""
    window = max(window, 1)
    return min(window, max(_ceil_div(window, 2), MIN_BLOCK))


class BlockLayout:
    """Sizes of the blocked, dilated, heads-first view of a sequence.

    `rows = batch * dilation` rows of `num_blocks * block_size` positions;
    position `p` of the sequence sits in row `b * dilation + p % dilation`,
    at index `p // dilation` of that row. Key spans reach `halo` blocks to
    each side (to the left only when causal).
    """

    def __init__(self, batch_size, length, window, dilation, causal):
        self.batch_size = batch_size
        self.length = length
        self.dilation = dilation
        target = target_block_size(window)
        subsequence_length = _ceil_div(length, dilation)
        # A block never needs to be longer than the subsequence: short
        # inputs stay O(T^2) for their length, not O(window^2).
        self.block_size = _minimum(target, subsequence_length)
        self.num_blocks = _ceil_div(subsequence_length, self.block_size)
        self.rows = batch_size * dilation
        self.padded_length = self.num_blocks * self.block_size * dilation
        # Static (from the target size). At least one block: a span of one
        # key (window 0) would make a softmax over a single slot.
        self.halo = max(_ceil_div(window, target), 1)
        self.blocks_after = 0 if causal else self.halo
        self.span_blocks = self.halo + 1 + self.blocks_after
        self.span = self.span_blocks * self.block_size


def to_heads(x, layout):
    """`[B, T, n, H]` -> `[B * d, n, T', H]`, `T' = num_blocks * block_size`."""
    heads, head_dim = x.shape[2], x.shape[3]
    x = ops.pad(x, [[0, 0], [0, layout.padded_length - layout.length], [0, 0], [0, 0]])
    d = layout.dilation
    if d == 1:
        return ops.transpose(x, [0, 2, 1, 3])
    x = ops.reshape(x, [layout.batch_size, -1, d, heads, head_dim])
    x = ops.transpose(x, [0, 2, 3, 1, 4])
    return ops.reshape(x, [layout.rows, heads, -1, head_dim])


def from_heads(x, layout):
    """Inverse of `to_heads`: `[B * d, n, T', H]` -> `[B, T, n, H]`."""
    heads, head_dim = x.shape[1], x.shape[3]
    d = layout.dilation
    if d == 1:
        x = ops.transpose(x, [0, 2, 1, 3])
    else:
        x = ops.reshape(x, [layout.batch_size, d, heads, -1, head_dim])
        x = ops.transpose(x, [0, 3, 1, 2, 4])
        x = ops.reshape(x, [layout.batch_size, layout.padded_length, heads, head_dim])
    return ops.slice(x, [0, 0, 0, 0], [layout.batch_size, layout.length, heads, head_dim])


def to_rows(x, layout):
    """`[B, T]` -> `[B * d, T']`, like `to_heads` for per-position masks."""
    x = ops.pad(x, [[0, 0], [0, layout.padded_length - layout.length]])
    d = layout.dilation
    if d == 1:
        return x
    x = ops.swapaxes(ops.reshape(x, [layout.batch_size, -1, d]), 1, 2)
    return ops.reshape(x, [layout.rows, -1])


def span_indices(layout, num_global):
    """`[num_blocks, span + G]` int32: where block `k` reads its keys in the
    flat sequence `[G global | halo | T' keys | halo]`."""
    block, halo = layout.block_size, layout.halo
    blocks = ops.arange(layout.num_blocks, dtype="int32")[:, None]
    slots = ops.arange(layout.span, dtype="int32")[None, :]
    # Slot s of block k is padded position k * block + s (the halo of zeros
    # before the keys makes position - halo * block the key's index).
    local = num_global + blocks * block + slots
    if num_global is None or isinstance(num_global, int) and num_global == 0:
        return local
    globals_ = ops.broadcast_to(
        ops.arange(num_global, dtype="int32")[None, :], [layout.num_blocks, num_global]
    )
    return ops.concatenate([local, globals_], axis=1)


def flat_sequence(x, layout, axis, global_part=None):
    """`[global | halo zeros | x | halo zeros]` along `axis` (a copy of `x`)."""
    pads = [[0, 0]] * len(x.shape)
    pads[axis] = [layout.halo * layout.block_size, layout.blocks_after * layout.block_size]
    x = ops.pad(x, pads)
    return x if global_part is None else ops.concatenate([global_part, x], axis=axis)


def flat_heads(x, layout, global_part=None):
    """`flat_sequence(to_heads(x), layout, 2, global_part)`: `[B, T, n, H]`
    -> `[B * d, n, G + halo + T' + halo, H]`, the sequence key spans are
    read from. Without dilation one pad makes both the blocks' padding and
    the halos: one copy of the keys (and of the values) fewer."""
    if layout.dilation != 1:
        return flat_sequence(to_heads(x, layout), layout, 2, global_part)
    before = layout.halo * layout.block_size
    after = layout.padded_length - layout.length + layout.blocks_after * layout.block_size
    x = ops.transpose(ops.pad(x, [[0, 0], [before, after], [0, 0], [0, 0]]), [0, 2, 1, 3])
    return x if global_part is None else ops.concatenate([global_part, x], axis=2)


def windowed_attention(
    query,
    key,
    value,
    *,
    window,
    dilation,
    causal,
    local_key_mask,
    global_keys=None,
    dropout_fn=None,
):
    """Sliding-window attention of every query, jointly with global keys.

    Args:
        query: `[B, T, n, H]`, already scaled.
        key, value: `[B, T, n, H]`.
        window: int >= 0, one-sided window in units of the dilated
            subsequence: query `i` sees keys `i + m * dilation` for
            `m` in `[-window, window]` (`[-window, 0]` when causal).
        dilation: int >= 1.
        causal: bool.
        local_key_mask: `[B, T]` bool, keys that may be attended through
            the band (real and not global: global keys come in once,
            through `global_keys`).
        global_keys: `None`, or a tuple `(keys, values, slot_mask,
            positions)` of shapes `[B, G, n, H]`, `[B, G, n, H]`, `[B, G]`
            bool, `[B, G]` int: keys every query attends in addition to its
            band (those at positions after the query are skipped when
            causal).
        dropout_fn: optional callable applied to the attention
            probabilities.

    Returns:
        `[B, T, n, H]` attention output in the dtype of `value`.
    """
    batch_size, length = ops.shape(query)[0], ops.shape(query)[1]
    heads, head_dim = query.shape[2], query.shape[3]
    layout = BlockLayout(batch_size, length, window, dilation, causal)
    rows, num_blocks, block = layout.rows, layout.num_blocks, layout.block_size

    num_global, global_parts = 0, (None, None, None)
    if global_keys is not None:
        keys, values, slot_mask, positions = global_keys
        num_global = ops.shape(keys)[1]
        # Heads first, then one copy per dilation row (transposing after the
        # repeat exports wrongly through tf2onnx).
        keys, values = (ops.transpose(t, [0, 2, 1, 3]) for t in (keys, values))
        keys, values, slot_mask, positions = (
            ops.repeat(t, dilation, axis=0) if dilation > 1 else t
            for t in (keys, values, slot_mask, positions)
        )
        global_parts = (keys, values, slot_mask)
    indices = span_indices(layout, num_global)
    bias = _span_bias(
        layout, window, causal, local_key_mask, indices, num_global, global_parts[2],
        positions if global_keys is not None and causal else None,
    )

    group = heads_per_group(heads)
    outputs = []
    for first in range(0, heads, group):
        heads_of_group = slice(first, min(first + group, heads))
        # Token-major tensors carry heads on axis 2, heads-first ones on 1.
        pick = lambda t, axis: t if group >= heads or t is None else (
            t[:, :, heads_of_group] if axis == 2 else t[:, heads_of_group]
        )
        outputs.append(
            _band_attention(
                pick(query, 2), pick(key, 2), pick(value, 2),
                pick(global_parts[0], 1), pick(global_parts[1], 1),
                bias=bias, indices=indices, layout=layout, dropout_fn=dropout_fn,
            )
        )
    return outputs[0] if len(outputs) == 1 else ops.concatenate(outputs, axis=2)


def _band_attention(query, key, value, global_keys, global_values, *, bias, indices,
                    layout, dropout_fn):
    """Band plus global columns of `n` heads: `[B, T, n, H]` in, out.

    `global_keys` and `global_values` are heads-first `[R, n, G, H]` (or
    `None`); `bias` is `_span_bias`, shared by every head.
    """
    heads, head_dim = query.shape[2], query.shape[3]
    rows, num_blocks, block = layout.rows, layout.num_blocks, layout.block_size

    def spans(x, global_part):
        return ops.take(flat_heads(x, layout, global_part), indices, axis=2)  # [R, n, nb, span + G, H]

    query_blocks = ops.reshape(
        to_heads(query, layout), [rows, heads, num_blocks, block, head_dim]
    )
    scores = ops.matmul(query_blocks, ops.swapaxes(spans(key, global_keys), -1, -2))
    probs = ops.softmax(ops.cast(scores, "float32") + bias, axis=-1)
    if dropout_fn is not None:
        probs = dropout_fn(probs)
    output = ops.matmul(ops.cast(probs, value.dtype), spans(value, global_values))
    output = ops.reshape(output, [rows, heads, num_blocks * block, head_dim])
    return from_heads(output, layout)


def heads_per_group(heads):
    """Heads computed together. On TensorFlow, one at a time: each head's
    scores (`T x span` floats) stay small enough to be served from the heap
    and the cache, where all heads at once are fresh pages every call (a
    65,536-token call adds 1.2 GiB instead of 1.7), and the executor runs
    the heads' independent chains on every core. XLA (JAX), GPUs and
    onnxruntime want one batched op: inside `all_heads_at_once()` every
    backend traces that way."""
    if _all_heads_at_once or keras.backend.backend() != "tensorflow":
        return heads
    return 1


_all_heads_at_once = False


@contextlib.contextmanager
def all_heads_at_once():
    """Within this context, every head of the band runs in one batched op,
    also on TensorFlow. The ONNX exporter traces this way: onnxruntime runs
    the exported layer 1.5x faster than as twelve chains (4,096 tokens,
    12 heads, 2 CPU cores: 0.42 s against 0.63 s)."""
    global _all_heads_at_once
    previous, _all_heads_at_once = _all_heads_at_once, True
    try:
        yield
    finally:
        _all_heads_at_once = previous


def _span_bias(layout, window, causal, local_key_mask, indices, num_global, slot_mask,
               global_positions):
    """`[R, 1, nb, block, span + G]` float32 bias shared by every head: the
    band, padded and global keys in the band, invalid global slots and (when
    causal) global keys after the query."""
    rows, num_blocks, block = layout.rows, layout.num_blocks, layout.block_size
    key_ok = ops.take(
        flat_sequence(to_rows(local_key_mask, layout), layout, 1, slot_mask),
        indices,
        axis=1,
    )  # [R, nb, span + G]
    in_band = band_mask(block, window, causal, layout.halo)  # [block, span]
    conditions = [key_ok[:, :, None, :]]
    if slot_mask is None:
        conditions.append(in_band)
    else:
        everyone = ops.ones((block, num_global), "bool")
        conditions.append(ops.concatenate([in_band, everyone], axis=1))
    if global_positions is not None:
        length = layout.length
        query_positions = ops.reshape(
            to_rows(
                ops.broadcast_to(
                    ops.arange(length, dtype="int32")[None, :], [layout.batch_size, length]
                ),
                layout,
            ),
            [rows, num_blocks, block, 1],
        )
        global_ok = not_after(query_positions, global_positions[:, None, None, :])
        conditions.append(
            ops.concatenate(
                [ops.ones([rows, num_blocks, block, layout.span], "bool"), global_ok],
                axis=-1,
            )
        )
    return mask_bias(*conditions)[:, None]


# Large enough that exp(MASK_VALUE + score - row max) is exactly 0 in float32
# (scores are float32 here whatever the input dtype), small enough that a
# few of them summed stay finite: no row ever computes inf - inf.
MASK_VALUE = -1e9


def mask_bias(*conditions):
    """Additive float32 bias: 0 where every condition holds, else <= -1e9.

    Each condition keeps its own (small, broadcastable) shape; the sum
    broadcasts them, so no boolean tensor of the scores' size is built.
    """
    bias = None
    for condition in conditions:
        term = ops.where(condition, 0.0, MASK_VALUE)
        bias = term if bias is None else bias + term
    return bias


def masked_softmax(scores, biases):
    """Softmax over the concatenated last axes of `scores`, in float32.

    `scores` and `biases` (from `mask_bias`) are lists of tensors that
    broadcast together and agree on every axis but the last. Masked keys get
    exactly 0 in any row that has a key to attend. A row with none (a
    padded query) gets finite weights, which the caller discards. Returns
    the probabilities split back like `scores`.
    """
    sizes = [ops.shape(s)[-1] for s in scores]
    biased = [score + bias for score, bias in zip(scores, biases)]
    joint = biased[0] if len(biased) == 1 else ops.concatenate(biased, axis=-1)
    weights = ops.exp(joint - ops.max(joint, axis=-1, keepdims=True))
    probs = weights / ops.sum(weights, axis=-1, keepdims=True)
    if len(sizes) == 1:
        return [probs]
    parts, start = [], 0
    for size in sizes:
        shape = list(ops.shape(probs)[:-1]) + [size]
        parts.append(ops.slice(probs, [0] * (len(shape) - 1) + [start], shape))
        start = start + size
    return parts
