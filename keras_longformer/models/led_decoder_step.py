"""One cached step of an LED decoder layer, reading a cross-attention cache laid out for it.

A generation reads every layer's cross-attention keys and values at every
step. keras-hub's cached attention keeps them as `[B, S, heads, head_dim]`
and its einsum transposes them on each read; here they are kept as
`[B, heads, S, head_dim]`, so each step is two plain batched matmuls over
them. Everything else is keras-hub's `TransformerDecoder` (its sublayers,
weights and self-attention cache), in its post-LayerNorm order, at
inference (no dropout).
"""

import math

from keras import ops


def cross_attention_keys_values(layer, encoder_hidden_states):
    """`[B, 2, heads, S, head_dim]`: a decoder layer's cross-attention keys
    and values of the encoder's output."""
    attention = layer._cross_attention_layer
    keys = ops.transpose(attention._key_dense(encoder_hidden_states), (0, 2, 1, 3))
    values = ops.transpose(attention._value_dense(encoder_hidden_states), (0, 2, 1, 3))
    return ops.stack([keys, values], axis=1)


def _cross_attention(layer, x, keys_values, encoder_padding_mask):
    """`keys_values`: `(keys, values)`, each `[B, heads, S, head_dim]`."""
    attention = layer._cross_attention_layer
    query = ops.transpose(attention._query_dense(x), (0, 2, 1, 3))  # [B, heads, T, head_dim]
    query = query * ops.cast(1.0 / math.sqrt(attention._key_dim), query.dtype)
    keys, values = keys_values
    # A batched matmul reading the keys as they lie; the softmax in float32.
    scores = ops.cast(ops.einsum("bhtd,bhsd->bhts", query, keys), "float32")
    if encoder_padding_mask is not None:
        # keras' masked softmax: a large negative score on padded keys.
        padded = ops.logical_not(ops.cast(encoder_padding_mask, "bool"))[:, None, None, :]
        scores = ops.where(padded, -1e9, scores)
    probabilities = ops.cast(ops.softmax(scores, axis=-1), values.dtype)
    attended = ops.transpose(ops.matmul(probabilities, values), (0, 2, 1, 3))  # [B, T, heads, head_dim]
    return attention._output_dense(attended)


def decoder_layer_step(layer, x, self_attention_cache, cache_update_index, cross_keys_values,
                       encoder_padding_mask):
    """keras-hub `TransformerDecoder` `layer` over the new tokens `x`
    `[B, T, D]` at positions `cache_update_index` onwards.

    Returns:
        `(x, self_attention_cache)`, the cache `[B, 2, M, heads, head_dim]`
        updated at the new positions. `cross_keys_values` is the layer's
        `(keys, values)`, each `[B, heads, S, head_dim]`.
    """
    # Self-attention: keras-hub's cached attention and causal mask.
    mask = layer._compute_self_attention_mask(x, None, None, True, self_attention_cache, cache_update_index)
    attended, self_attention_cache = layer._self_attention_layer(
        query=x, value=x, attention_mask=mask, cache=self_attention_cache, cache_update_index=cache_update_index
    )
    x = layer._self_attention_layer_norm(x + attended)
    # Cross-attention over the encoder's cached keys and values.
    x = layer._cross_attention_layer_norm(x + _cross_attention(layer, x, cross_keys_values, encoder_padding_mask))
    # Feed-forward.
    feed_forward = layer._feedforward_output_dense(layer._feedforward_intermediate_dense(x))
    return layer._feedforward_layer_norm(x + feed_forward), self_attention_cache
