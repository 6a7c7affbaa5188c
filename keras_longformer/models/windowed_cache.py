"""Key/value cache of a causal Longformer: a ring of `window * dilation + 1` slots per layer.

A causal Longformer layer whose heads have dilations `d_h` lets the token
at position `p` see the positions `p - m * d_h`, `m` in `[0, window]`:
never more than `window * max(d_h)` tokens back. Generation therefore keeps,
per layer, the keys and values of the last `window * max(d_h) + 1`
positions in a ring buffer (position `q` in slot `q mod S`), not of the
whole sequence: memory O(window) per layer, and every new token costs the
same, early or late in the sequence. Global tokens are not cached (a
causal model's prompt has none; `LongformerCausalLM.generate` refuses them).

Shapes: `B` batch, `T` sequence length, `N` heads, `H` head size, `D`
hidden size, `S` slots of a layer's ring, `V` vocabulary size.
"""

import math

import numpy as np
from keras import ops

from keras_longformer.layers._embedding_table import embedding_table
from keras_longformer.layers.longformer_encoder_layer import gelu_erf


def ring_size(layer):
    """Slots of `layer`'s ring: `window * max(dilation) + 1`."""
    dilations = layer.dilation if isinstance(layer.dilation, list) else [layer.dilation]
    return layer.window * max(dilations) + 1


def _key_value(layer, x):
    attention = layer.self_attention
    return attention._key_dense(x), attention._value_dense(x)


def seed_cache(backbone, token_ids, padding_mask, last_position):
    """Runs the prompt and returns the rings holding positions `<= last_position`.

    Args:
        backbone: a causal `LongformerBackbone`.
        token_ids: `[B, T]` the prompts (padded on the right).
        padding_mask: `[B, T]` bool, true on prompt tokens.
        last_position: int scalar tensor; positions after it are left out
            (the first generation step recomputes them).

    Returns:
        A tuple with one `(keys, values)` pair `[B, S, N, H]` per layer.
    """
    no_global = ops.zeros_like(padding_mask, dtype="bool")
    x = backbone.embeddings(token_ids)
    caches = []
    for layer in backbone.encoder_layers:
        keys, values = _key_value(layer, x)
        size = ring_size(layer)
        # Slot s holds the latest position q <= last_position with q = s mod S.
        slots = ops.arange(size, dtype="int32")
        positions = last_position - ops.mod(last_position - slots, size)
        index = ops.maximum(positions, 0)[None, :, None, None]
        caches.append(
            (
                ops.take_along_axis(keys, ops.broadcast_to(index, _ring_shape(keys, size)), axis=1),
                ops.take_along_axis(values, ops.broadcast_to(index, _ring_shape(values, size)), axis=1),
            )
        )
        x = layer(x, padding_mask=padding_mask, global_mask=no_global)
    return tuple(caches)


def _ring_shape(tensor, size):
    shape = ops.shape(tensor)
    return (shape[0], size, shape[2], shape[3])


def _allowed_slots(layer, position, size):
    """`[N, S]` bool: which slots head `h` attends at `position` (its dilated causal window)."""
    dilations = layer.dilation if isinstance(layer.dilation, list) else [layer.dilation] * layer.num_heads
    dilation = ops.convert_to_tensor(np.asarray(dilations, "int32")[:, None])
    offsets = ops.mod(position - ops.arange(size, dtype="int32"), size)[None, :]
    return ops.logical_and(
        ops.logical_and(ops.equal(ops.mod(offsets, dilation), 0), offsets <= layer.window * dilation),
        offsets <= position,
    )


def _cached_attention(layer, x, cache, position):
    """Self-attention of the token `x` `[B, 1, D]` at `position`; returns output and new ring."""
    attention = layer.self_attention
    size = ring_size(layer)
    keys, values = cache
    key, value = _key_value(layer, x)
    slot = ops.mod(position, size)
    keys = ops.slice_update(keys, [0, slot, 0, 0], ops.cast(key, keys.dtype))
    values = ops.slice_update(values, [0, slot, 0, 0], ops.cast(value, values.dtype))
    query = attention._query_dense(x)[:, 0]  # [B, N, H]
    scale = 1.0 / math.sqrt(attention.key_dim)
    scores = ops.einsum(
        "bnh,bsnh->bns", ops.cast(query, "float32") * scale, ops.cast(keys, "float32")
    )
    allowed = _allowed_slots(layer, position, size)[None]
    scores = ops.where(allowed, scores, ops.full_like(scores, -1e30))
    probabilities = ops.softmax(scores, axis=-1)
    attended = ops.einsum("bns,bsnh->bnh", probabilities, ops.cast(values, "float32"))
    attended = ops.cast(attended[:, None], x.dtype)  # [B, 1, N, H]
    return attention._output_dense(attended), (keys, values)


def _embed_one(backbone, token_ids, position):
    """Embeddings of the tokens `[B, 1]` at `position` (all earlier tokens real)."""
    embeddings = backbone.embeddings
    tokens = embeddings.token_embedding(token_ids)
    # RoBERTa positions: the k-th real token (from 1) sits at pad_token_id + k.
    row = ops.take(
        embedding_table(embeddings.position_embedding), position + embeddings.pad_token_id + 1, axis=0
    )
    token_type = embedding_table(embeddings.token_type_embedding)[0]
    x = tokens + ops.cast(row, tokens.dtype) + ops.cast(token_type, tokens.dtype)
    return embeddings.layer_norm(x)


def call_with_cache(backbone, token_ids, caches, position):
    """One generation step through every layer, reading and updating the rings.

    Args:
        backbone: a causal `LongformerBackbone`.
        token_ids: `[B, 1]` the tokens at `position`.
        caches: the tuple `seed_cache` returned (or this function).
        position: int scalar tensor.

    Returns:
        `(hidden [B, 1, D], caches)`.
    """
    x = _embed_one(backbone, token_ids, position)
    updated = []
    for layer, cache in zip(backbone.encoder_layers, caches):
        attended, cache = _cached_attention(layer, x, cache, position)
        updated.append(cache)
        x = layer.attention_layer_norm(x + attended)
        feed_forward = layer.output_dense(gelu_erf(layer.intermediate_dense(x)))
        x = layer.output_layer_norm(x + feed_forward)
    return x, tuple(updated)
