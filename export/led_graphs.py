"""The LED pair's two graphs: the encoder, and one cached decoder step.

`encoder.onnx` reads the document once and returns, with the encoder's
output, every decoder layer's cross-attention keys and values
`[B, layers, 2, heads, S, head_dim]` (they depend on the document only).
`decoder.onnx` runs the decoder over a few new tokens at a position of a
fixed-size self-attention cache, as keras-hub's `generate` does: the cache
`[B, layers, 2, M, heads, head_dim]` goes in, the updated cache comes out.
"""

import contextlib

from keras_longformer.export import conversion as conversion_lib

ENCODER_INPUTS = ("encoder_token_ids", "encoder_padding_mask", "encoder_global_mask")
DECODER_INPUTS = (
    "decoder_token_ids", "encoder_padding_mask", "self_attention_cache", "cross_attention_cache",
    "cache_update_index",
)
DECODER_OUTPUTS = ("logits", "next_self_attention_cache")


def io_dims(lm):
    """Input/output name -> its dims: a name (`batch`, `encoder_length`,
    `new_tokens`, `cache_length`) where dynamic, else the size."""
    backbone = lm.backbone
    layers, heads = backbone.num_layers, backbone.num_heads
    head_dim, hidden = backbone.hidden_dim // heads, backbone.hidden_dim
    sequence = ("batch", "encoder_length")
    return {
        "encoder_token_ids": sequence,
        "encoder_padding_mask": sequence,
        "encoder_global_mask": sequence,
        "encoder_hidden_states": sequence + (hidden,),
        "cross_attention_cache": ("batch", layers, 2, heads, "encoder_length", head_dim),
        "decoder_token_ids": ("batch", "new_tokens"),
        "self_attention_cache": ("batch", layers, 2, "cache_length", heads, head_dim),
        "next_self_attention_cache": ("batch", layers, 2, "cache_length", heads, head_dim),
        "cache_update_index": (1,),
        "logits": ("batch", "new_tokens", backbone.vocabulary_size),
    }


def _signature(dims, names, dtypes):
    """`tf.TensorSpec`s of `names` from their dims (a named dim is dynamic)."""
    import tensorflow as tf

    return [tf.TensorSpec(tuple(None if isinstance(d, str) else d for d in dims[name]), dtype, name=name)
            for name, dtype in zip(names, dtypes)]


class _OpsWritingCachesByConcat:
    """`keras.ops` for keras-hub's cached attention, but for `slice_update`.

    TensorFlow lowers `ops.slice_update` to `XlaDynamicUpdateSlice`, which
    tf2onnx 1.17 leaves unconverted. The cache update keras-hub makes
    (start `[0, index, 0, 0]`, the update spanning every other axis) is the
    same as two slices and a concat, which convert to plain ONNX.
    """

    def __init__(self, ops):
        self._ops = ops

    def __getattr__(self, name):
        return getattr(self._ops, name)

    def slice_update(self, inputs, start_indices, updates):
        import tensorflow as tf

        if len(start_indices) < 2 or any(
            not isinstance(start, int) or start != 0 for axis, start in enumerate(start_indices) if axis != 1
        ):
            raise NotImplementedError(
                f"Only cache updates along axis 1 convert. Received: start_indices={start_indices}"
            )
        start = tf.cast(start_indices[1], "int32")
        end = start + tf.shape(updates)[1]
        return tf.concat([inputs[:, :start], tf.cast(updates, inputs.dtype), inputs[:, end:]], axis=1)


@contextlib.contextmanager
def _caches_written_by_concat():
    from keras_hub.src.layers.modeling import cached_multi_head_attention as module

    ops = module.ops
    module.ops = _OpsWritingCachesByConcat(ops)
    try:
        yield
    finally:
        module.ops = ops


def encoder_graph(lm, opset):
    """`encoder.onnx`'s proto: token ids, padding and global masks `[B, S]`
    (int32) in; `encoder_hidden_states` `[B, S, D]` and
    `cross_attention_cache` `[B, layers, 2, heads, S, head_dim]` out."""
    import tensorflow as tf

    def make_function():
        @tf.function
        def encode(encoder_token_ids, encoder_padding_mask, encoder_global_mask):
            hidden = lm.call_encoder(encoder_token_ids, encoder_padding_mask, encoder_global_mask)
            cross_cache = lm.call_cross_attention_cache(hidden)
            return {"encoder_hidden_states": hidden, "cross_attention_cache": cross_cache}

        return encode

    dims = io_dims(lm)
    signature = _signature(dims, ENCODER_INPUTS, ["int32"] * 3)
    proto = conversion_lib.convert_function(make_function, signature, opset=opset)
    _name_dims(proto, dims)
    return proto


def decoder_graph(lm, opset):
    """`decoder.onnx`'s proto: `decoder_token_ids` `[B, t]` at positions
    `cache_update_index` (`[1]`, int32) onwards, with `encoder_padding_mask`,
    the self-attention cache (length `M`) and the encoder's
    cross-attention cache in; `logits` `[B, t, V]` and
    `next_self_attention_cache` out."""
    import tensorflow as tf

    def make_function():
        @tf.function
        def decode(decoder_token_ids, encoder_padding_mask, self_attention_cache, cross_attention_cache,
                   cache_update_index):
            logits, _, next_cache = lm.call_decoder_with_cache(
                encoder_padding_mask, decoder_token_ids, self_attention_cache, cache_update_index[0],
                cross_attention_cache,
            )
            return {"logits": logits, "next_self_attention_cache": next_cache}

        return decode

    dims = io_dims(lm)
    signature = _signature(dims, DECODER_INPUTS, ["int32", "int32", "float32", "float32", "int32"])
    # The self-attention cache is written with keras-hub's slice_update.
    with _caches_written_by_concat():
        proto = conversion_lib.convert_function(make_function, signature, opset=opset)
    _name_dims(proto, dims)
    return proto


def _name_dims(proto, dims):
    """Readable dims (`batch`, `encoder_length`, ...) in place of tf2onnx's
    `unk__N`, and the static sizes tf2onnx may leave unknown on outputs."""
    for value in list(proto.graph.input) + list(proto.graph.output):
        shape = value.type.tensor_type.shape
        shape.SetInParent()
        del shape.dim[:]
        for size in dims[value.name]:
            dim = shape.dim.add()
            if isinstance(size, str):
                dim.dim_param = size
            else:
                dim.dim_value = size
