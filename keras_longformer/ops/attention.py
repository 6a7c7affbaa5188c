"""`longformer_attention`: sliding-window, dilated, causal and global attention."""

import functools
import math

import keras
from keras import ops

from keras_longformer.arguments import check_bool, check_dilation, check_int
from keras_longformer.ops import global_tokens
from keras_longformer.ops import input_checks
from keras_longformer.ops.masks import as_bool_mask, not_after
from keras_longformer.ops.windowed import mask_bias, masked_softmax, windowed_attention


def longformer_attention(
    query,
    key,
    value,
    *,
    window,
    dilation=1,
    causal=False,
    padding_mask=None,
    global_mask=None,
    global_query=None,
    global_key=None,
    global_value=None,
    scale=None,
    max_global_tokens=None,
    dropout_fn=None,
):
    """Longformer attention: a sliding window plus global tokens.

    Shapes: `B` batch, `T` sequence length, `N` heads, `H` head size,
    `G` the largest number of global tokens of any batch row (on JAX, the
    static bound `max_global_tokens`).

    Query `i` of a head with dilation `d` attends:
    - if it is a global token: every real key `j` (`j <= i` when causal),
      scored with `global_query`, `global_key`, `global_value` where given;
    - otherwise: the local keys `j = i + m * d` with `m` in
      `[-window, window]` (`[-window, 0]` when causal) and `0 <= j < T`,
      plus every global key (`j <= i` when causal), each key once.
    Padded keys are never attended; padded query rows output exactly 0.
    The window is one-sided: the span is `2 * window + 1`, so Hugging
    Face's `attention_window=512` is `window=256` here. Memory grows as
    `T * window + T * G`; no `[T, T]` tensor is ever built. Softmax runs in
    float32 whatever the input dtype, and no row yields NaN.

    Args:
        query: `[B, T, N, H]` tensor.
        key: `[B, T, N, H]` tensor.
        value: `[B, T, N, H]` tensor.
        window: int >= 0, the one-sided window (any size, also `>= T`).
        dilation: int >= 1, or a list of `N` ints, one per head.
        causal: bool; when true no query sees a later key, global keys
            included.
        padding_mask: optional `[B, T]` bool or 0/1 int, true for real
            tokens. Defaults to all real.
        global_mask: optional `[B, T]` bool or 0/1 int, true for global
            tokens (padded ones do not count). Any number per row, anywhere.
        global_query: optional `[B, T, N, H]`, the queries of global tokens
            (defaults to `query`).
        global_key: optional `[B, T, N, H]`, the keys global queries score
            against (defaults to `key`).
        global_value: optional `[B, T, N, H]`, the values global queries
            read (defaults to `value`).
        scale: float multiplying the scores; defaults to `1 / sqrt(H)`.
        max_global_tokens: optional int >= 1, the most global tokens a row
            may have. JAX compiles static shapes, so there it sizes global
            attention (default 65: `<s>` and a 64-token question) and the
            cost grows in proportion to it; TensorFlow and torch read the
            count from the data and impose no bound unless one is given. A
            row over the bound is a `ValueError` naming it wherever the mask
            is concrete (numpy, eager); inside a trace its output is NaN,
            never silently truncated.
        dropout_fn: optional callable applied to the attention
            probabilities (the layer passes dropout here when training).

    Returns:
        `[B, T, N, H]` tensor in the dtype of `query`.

    Example:

    >>> q = k = v = keras.random.normal((2, 1000, 4, 16))
    >>> global_mask = keras.ops.arange(1000)[None, :] < 1  # [CLS] global
    >>> out = longformer_attention(q, k, v, window=64, global_mask=global_mask)
    >>> out.shape
    (2, 1000, 4, 16)

    Reference:
    - [Beltagy, Peters, Cohan, Longformer: The Long-Document Transformer,
      2020](https://arxiv.org/abs/2004.05150)
    """
    global_tokens.check_max_global_tokens(max_global_tokens)
    scale = input_checks.check_scale(scale)
    input_checks.check_mask_values("padding_mask", padding_mask)
    input_checks.check_mask_values("global_mask", global_mask)
    global_tokens.check_global_tokens(global_mask, padding_mask, max_global_tokens)
    arrays = (query, key, value, padding_mask, global_mask, global_query, global_key, global_value)
    if dropout_fn is None and _eager_on_jax(arrays):
        # Every static argument checked first: a cache key never stands for
        # an unchecked value (True would share the entry of 1).
        heads = _check_inputs(*(ops.convert_to_tensor(a) for a in arrays[:3]), window, causal)[0]
        dilation = tuple(_per_head_dilation(dilation, heads))
        static = (window, dilation, causal, scale, max_global_tokens)
        return _compiled_on_jax(*static)(*arrays)
    query, key, value = (ops.convert_to_tensor(t) for t in (query, key, value))
    heads, head_dim = _check_inputs(query, key, value, window, causal)
    input_checks.check_not_empty(query)
    dilations = _per_head_dilation(dilation, heads)
    if scale is None:
        scale = 1.0 / math.sqrt(head_dim)
    global_query, global_key, global_value = (
        default if given is None else ops.convert_to_tensor(given)
        for given, default in (
            (global_query, query),
            (global_key, key),
            (global_value, value),
        )
    )
    for name, tensor in (
        ("global_query", global_query),
        ("global_key", global_key),
        ("global_value", global_value),
    ):
        _check_same_shape(name, tensor, query)
    input_checks.check_same_dtype(
        {"key": key, "value": value, "global_query": global_query,
         "global_key": global_key, "global_value": global_value},
        query,
    )

    batch_size, length = ops.shape(query)[0], ops.shape(query)[1]
    padding_mask = as_bool_mask(
        padding_mask, batch_size, length, True, "padding_mask"
    )
    query = query * ops.cast(scale, query.dtype)

    global_slots = None
    local_key_mask = padding_mask
    if global_mask is not None:
        global_mask = ops.logical_and(
            as_bool_mask(global_mask, batch_size, length, False, "global_mask"),
            padding_mask,
        )
        global_slots = GlobalSlots(global_mask, max_global_tokens)
        local_key_mask = ops.logical_and(padding_mask, ops.logical_not(global_mask))

    head_outputs = []
    for group_dilation, heads_of_group in _dilation_groups(dilations):
        select = _head_selector(heads_of_group, heads)
        global_keys = None
        if global_slots is not None:
            global_keys = (
                global_slots.gather(select(key)),
                global_slots.gather(select(value)),
                global_slots.valid,
                global_slots.positions,
            )
        head_outputs.append(
            windowed_attention(
                select(query),
                select(key),
                select(value),
                window=window,
                dilation=group_dilation,
                causal=causal,
                local_key_mask=local_key_mask,
                global_keys=global_keys,
                dropout_fn=dropout_fn,
            )
        )
    output = _restore_head_order(head_outputs, dilations)

    if global_slots is not None:
        global_rows = _global_query_attention(
            global_slots.gather(global_query) * ops.cast(scale, query.dtype),
            global_key,
            global_value,
            global_slots,
            padding_mask,
            causal,
            dropout_fn,
        )
        output = ops.where(
            global_mask[:, :, None, None], global_slots.scatter(global_rows), output
        )
        if global_slots.overflow is not None:
            # Only reachable inside a trace (concrete masks were checked):
            # a row that lost global tokens is NaN, never silently wrong.
            output = ops.where(
                global_slots.overflow[:, None, None, None],
                ops.full((), float("nan"), output.dtype),
                output,
            )
    output = ops.where(
        padding_mask[:, :, None, None], output, ops.zeros_like(output)
    )
    return ops.cast(output, query.dtype)


def _eager_on_jax(arrays):
    """Whether this is an eager call on JAX (no tracer among `arrays`).

    JAX runs eager code one primitive at a time, compiling each for its
    shapes: this op's few hundred primitives took 30 s for one new shape.
    One compiled function per shape takes a few seconds.
    """
    if keras.backend.backend() != "jax" or global_tokens.in_symbolic_scope():
        return False
    import jax

    return not any(isinstance(a, (jax.core.Tracer, keras.KerasTensor)) for a in arrays)


@functools.lru_cache(maxsize=64)
def _compiled_on_jax(window, dilation, causal, scale, max_global_tokens):
    import jax

    dilation = list(dilation) if isinstance(dilation, tuple) else dilation

    def attention(query, key, value, padding_mask, global_mask, global_query, global_key, global_value):
        return longformer_attention(
            query, key, value, window=window, dilation=dilation, causal=causal,
            padding_mask=padding_mask, global_mask=global_mask, global_query=global_query,
            global_key=global_key, global_value=global_value, scale=scale,
            max_global_tokens=max_global_tokens,
        )

    return jax.jit(attention)


class GlobalSlots:
    """The global tokens of each row, as `G` slots in position order.

    `G` is the largest number of global tokens of any row (at least 1), or
    on JAX the static bound (no more than `T`); rows with fewer fill the rest
    with invalid slots. Rows are selected and scattered with one-hot
    matmuls: exact, differentiable, and the same O(G x T) as global
    attention itself. `overflow` (`[B]` bool, or `None` where `G` is read
    from the data) marks rows with more global tokens than slots.
    """

    def __init__(self, global_mask, max_global_tokens=None):
        length = ops.shape(global_mask)[1]
        count = ops.sum(ops.cast(global_mask, "int32"), axis=1)
        self.overflow = None
        if global_tokens.needs_static_slots():
            num_slots = min(global_tokens.effective_bound(max_global_tokens), length)
            self.overflow = ops.greater(count, num_slots)
        else:
            num_slots = ops.maximum(ops.max(count), 1)
        # Global positions score T - position, the others 0: the top
        # `num_slots` are the global positions in increasing order.
        positions = ops.arange(length, dtype="int32")
        priority = ops.where(
            global_mask, ops.cast(length - positions, "float32")[None, :], 0.0
        )
        values, self.positions = ops.top_k(priority, num_slots)
        self.positions = ops.cast(self.positions, "int32")
        self.valid = ops.greater(values, 0.0)
        one_hot = ops.logical_and(
            ops.equal(self.positions[:, :, None], positions[None, None, :]),
            self.valid[:, :, None],
        )
        self._one_hot = one_hot  # [B, G, T]

    def gather(self, x):
        """`[B, T, n, H]` -> `[B, G, n, H]`, the rows of the global tokens."""
        return _rows_matmul(ops.cast(self._one_hot, x.dtype), x)

    def scatter(self, x):
        """`[B, G, n, H]` -> `[B, T, n, H]`, zeros outside global rows."""
        one_hot = ops.swapaxes(ops.cast(self._one_hot, x.dtype), 1, 2)
        return _rows_matmul(one_hot, x)


def _rows_matmul(selection, x):
    """`[B, R, S] @ [B, S, n, H]` -> `[B, R, n, H]`."""
    heads, head_dim = x.shape[2], x.shape[3]
    batch_size, rows = ops.shape(selection)[0], ops.shape(selection)[1]
    flat = ops.reshape(x, [batch_size, ops.shape(x)[1], heads * head_dim])
    return ops.reshape(
        ops.matmul(selection, flat), [batch_size, rows, heads, head_dim]
    )


def _global_query_attention(
    queries, keys, values, slots, padding_mask, causal, dropout_fn
):
    """Each global query `[B, G, N, H]` against every real key: `[B, G, N, H]`."""
    queries = ops.transpose(queries, [0, 2, 1, 3])  # [B, N, G, H]
    scores = ops.matmul(queries, ops.transpose(keys, [0, 2, 3, 1]))  # [B, N, G, T]
    allowed = [padding_mask[:, None, None, :]]
    if causal:
        key_positions = ops.arange(ops.shape(keys)[1], dtype="int32")
        allowed.append(not_after(slots.positions[:, None, :, None], key_positions))
    (probs,) = masked_softmax([ops.cast(scores, "float32")], [mask_bias(*allowed)])
    if dropout_fn is not None:
        probs = dropout_fn(probs)
    output = ops.matmul(
        ops.cast(probs, values.dtype), ops.transpose(values, [0, 2, 1, 3])
    )
    return ops.transpose(output, [0, 2, 1, 3])


def _check_inputs(query, key, value, window, causal):
    if len(query.shape) != 4:
        raise ValueError(
            "`query` must have shape [batch, seq, heads, head_dim]. "
            f"Received: query.shape={tuple(query.shape)}"
        )
    _check_same_shape("key", key, query)
    _check_same_shape("value", value, query)
    if query.shape[2] is None or query.shape[3] is None:
        raise ValueError(
            "The heads and head_dim axes of `query` must be known. "
            f"Received: query.shape={tuple(query.shape)}"
        )
    check_int("window", window, 0)
    check_bool("causal", causal)
    return query.shape[2], query.shape[3]


def _check_same_shape(name, tensor, query):
    if len(tensor.shape) != 4 or any(
        a is not None and b is not None and a != b
        for a, b in zip(tensor.shape, query.shape)
    ):
        raise ValueError(
            f"`{name}` must have the shape of `query` {tuple(query.shape)}. "
            f"Received: {name}.shape={tuple(tensor.shape)}"
        )


def _per_head_dilation(dilation, heads):
    dilation = check_dilation(dilation, heads)
    return dilation if isinstance(dilation, list) else [dilation] * heads


def _dilation_groups(dilations):
    """[(dilation, [head, ...]), ...] in increasing dilation."""
    groups = {}
    for head, d in enumerate(dilations):
        groups.setdefault(d, []).append(head)
    return sorted(groups.items())


def _head_selector(heads_of_group, num_heads):
    if len(heads_of_group) == num_heads:
        return lambda x: x
    if heads_of_group == list(range(heads_of_group[0], heads_of_group[-1] + 1)):
        start, size = heads_of_group[0], len(heads_of_group)
        return lambda x: x[:, :, start : start + size, :]
    return lambda x: ops.take(x, heads_of_group, axis=2)


def _restore_head_order(head_outputs, dilations):
    if len(head_outputs) == 1:
        return head_outputs[0]
    order = [head for _, heads in _dilation_groups(dilations) for head in heads]
    inverse = [order.index(head) for head in range(len(dilations))]
    return ops.take(ops.concatenate(head_outputs, axis=2), inverse, axis=2)
