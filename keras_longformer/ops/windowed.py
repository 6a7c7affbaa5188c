"""Blocked sliding-window kernels: dilation, causality and padding to blocks.

The band of a sliding window is computed block by block. The (sub)sequence
is cut into blocks of `block_size >= window` queries, and each query block
is scored against the key blocks around it (previous, own and, unless
causal, next), so every key of the band `[-window, window]` is inside the
span. The scores of a block are `[block_size, 3 * block_size]` (`2 *` when
causal): memory is O(T x window), never O(T x T).

Dilation `d` is a plain window over the `d` interleaved subsequences
`x[r::d]`, `r = 0 .. d - 1`: the sequence is padded to a multiple of `d`,
reshaped to `[B, T/d, d]` and transposed so that each subsequence becomes
its own batch row. No gather, only pads, reshapes and transposes.

Every size here may be a Python int (static shapes) or a scalar tensor
(dynamic shapes inside a traced function): the same code traces once for
every batch size and length.
"""

from keras import ops

from keras_longformer.ops.masks import band_mask, not_after, span_blocks


def _minimum(a, b):
    if isinstance(a, int) and isinstance(b, int):
        return min(a, b)
    return ops.minimum(a, b)


def _ceil_div(numerator, denominator):
    # Operands are never negative here, so floor division is exact and
    # exports with the same meaning everywhere (unlike `(-n) % block`).
    return (numerator + denominator - 1) // denominator


class BlockLayout:
    """Sizes of the blocked, dilated view of a `[B, T, ...]` sequence.

    `rows = batch * dilation` rows of `num_blocks * block_size` positions;
    position `p` of the sequence sits in row `b * dilation + p % dilation`,
    at index `p // dilation` of that row.
    """

    def __init__(self, batch_size, length, window, dilation):
        self.batch_size = batch_size
        self.length = length
        self.dilation = dilation
        subsequence_length = _ceil_div(length, dilation)
        # A block never needs to be longer than the subsequence: this keeps
        # `window >= T` at O(T^2) for that length instead of O(window^2).
        self.block_size = _minimum(max(window, 1), subsequence_length)
        self.num_blocks = _ceil_div(subsequence_length, self.block_size)
        self.rows = batch_size * dilation
        self.padded_length = self.num_blocks * self.block_size * dilation


def to_blocks(x, layout):
    """`[B, T, *rest]` -> `[B * d, num_blocks, block_size, *rest]`."""
    rest = list(x.shape[2:])
    pad = layout.padded_length - layout.length
    x = ops.pad(x, [[0, 0], [0, pad]] + [[0, 0]] * len(rest))
    d = layout.dilation
    if d > 1:
        x = ops.reshape(x, [layout.batch_size, -1, d] + rest)
        x = ops.swapaxes(x, 1, 2)
    return ops.reshape(
        x, [layout.rows, layout.num_blocks, layout.block_size] + rest
    )


def from_blocks(x, layout):
    """Inverse of `to_blocks`: `[B * d, nb, block, *rest]` -> `[B, T, *rest]`."""
    rest = list(x.shape[3:])
    d = layout.dilation
    if d > 1:
        x = ops.reshape(x, [layout.batch_size, d, -1] + rest)
        x = ops.swapaxes(x, 1, 2)
    x = ops.reshape(x, [layout.batch_size, layout.padded_length] + rest)
    return ops.slice(
        x, [0] * (2 + len(rest)), [layout.batch_size, layout.length] + rest
    )


def neighbor_spans(x, layout, causal):
    """`[R, nb, block, *rest]` -> `[R, nb, S * block, *rest]`.

    Span `k` is blocks `k - 1`, `k` and, unless causal, `k + 1` side by
    side (`S = span_blocks(causal)`); blocks outside the sequence are zeros
    (and masked by the caller).
    """
    rest = list(x.shape[3:])
    # One zero block before; one after only when the span reaches ahead.
    after = span_blocks(causal) - 2
    padded = ops.pad(x, [[0, 0], [1, after]] + [[0, 0]] * (1 + len(rest)))
    size = [layout.rows, layout.num_blocks, layout.block_size] + rest
    shifted = [
        ops.slice(padded, [0, shift] + [0] * (1 + len(rest)), size)
        for shift in range(span_blocks(causal))
    ]
    return ops.concatenate(shifted, axis=2)


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
    layout = BlockLayout(batch_size, length, window, dilation)
    rows, num_blocks, block = layout.rows, layout.num_blocks, layout.block_size

    # [R, n, nb, block, H] queries against [R, n, nb, H, S * block] keys.
    query_blocks = ops.transpose(to_blocks(query, layout), [0, 3, 1, 2, 4])
    key_spans = neighbor_spans(to_blocks(key, layout), layout, causal)
    value_spans = neighbor_spans(to_blocks(value, layout), layout, causal)
    scores = ops.matmul(query_blocks, ops.transpose(key_spans, [0, 3, 1, 4, 2]))
    key_ok = neighbor_spans(to_blocks(local_key_mask, layout), layout, causal)
    scores = [ops.cast(scores, "float32")]
    biases = [mask_bias(band_mask(block, window, causal), key_ok[:, None, :, None, :])]

    if global_keys is not None:
        keys, values, slot_mask, positions = global_keys
        keys, values, slot_mask, positions = (
            ops.repeat(t, dilation, axis=0) if dilation > 1 else t
            for t in (keys, values, slot_mask, positions)
        )
        flat_queries = ops.reshape(query_blocks, [rows, heads, -1, head_dim])
        global_scores = ops.matmul(flat_queries, ops.transpose(keys, [0, 2, 3, 1]))
        global_scores = ops.reshape(
            global_scores, [rows, heads, num_blocks, block, -1]
        )
        global_ok = [slot_mask[:, None, None, None, :]]
        if causal:
            query_positions = to_blocks(
                ops.broadcast_to(
                    ops.arange(length, dtype="int32")[None, :],
                    [batch_size, length],
                ),
                layout,
            )
            global_ok.append(
                not_after(
                    query_positions[:, None, :, :, None],
                    positions[:, None, None, None, :],
                ),
            )
        scores.append(ops.cast(global_scores, "float32"))
        biases.append(mask_bias(*global_ok))

    probs = masked_softmax(scores, biases)
    if dropout_fn is not None:
        probs = [dropout_fn(p) for p in probs]
    probs = [ops.cast(p, value.dtype) for p in probs]

    output = ops.matmul(probs[0], ops.transpose(value_spans, [0, 3, 1, 2, 4]))
    if global_keys is not None:
        flat_probs = ops.reshape(probs[1], [rows, heads, -1, ops.shape(values)[1]])
        global_output = ops.matmul(flat_probs, ops.transpose(values, [0, 2, 1, 3]))
        output = output + ops.reshape(
            global_output, [rows, heads, num_blocks, block, head_dim]
        )
    output = ops.transpose(output, [0, 2, 3, 1, 4])
    return from_blocks(output, layout)


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
