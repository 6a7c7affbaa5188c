import keras
from keras import ops

from keras_longformer.arguments import check_bool
from keras_longformer.arguments import check_dilation
from keras_longformer.arguments import check_int
from keras_longformer.arguments import check_rate
from keras_longformer.layers._initializers import clone_initializer
from keras_longformer.ops import global_tokens
from keras_longformer.ops.attention import GlobalSlots
from keras_longformer.ops.attention import longformer_attention
from keras_longformer.ops.masks import as_bool_mask


@keras.saving.register_keras_serializable(package="keras_longformer")
class LongformerSelfAttention(keras.layers.Layer):
    """Longformer self-attention: sliding window, dilation and global tokens.

    Shapes: `B` batch, `T` sequence length, `D` hidden size (the last axis
    of the input), `N` = `num_heads`, `H` = `key_dim`.

    Projects the input to queries, keys and values of `N` heads, runs
    `keras_longformer.ops.longformer_attention`, and projects the heads back
    to `D`, as `keras.layers.MultiHeadAttention` does. Token `i` of a head
    with dilation `d` attends the keys `i + m * d`, `m` in
    `[-window, window]` (`[-window, 0]` when `causal`), within the sequence,
    plus every global token; a global token attends every real token. The
    window is one-sided: Hugging Face's `attention_window=512` is
    `window=256`. Memory grows as `T * window`, never `T * T`.

    Args:
        num_heads: int >= 1, number of attention heads.
        key_dim: int >= 1, size of each head.
        window: int >= 0, the one-sided window.
        dilation: int >= 1, or a list of `num_heads` ints, one per head.
        causal: bool, when true no token sees a later one (global tokens
            included).
        dropout: float in `[0, 1)`, dropout on the attention probabilities.
        use_bias: bool, whether the projections have biases.
        global_projections: bool, whether global tokens use their own
            query/key/value projections (Longformer's `query_global`,
            `key_global`, `value_global`), else the ordinary ones.
        kernel_initializer: initializer of the projection kernels.
        bias_initializer: initializer of the projection biases.
        seed: optional int, seed of the dropout.
        max_global_tokens: optional int >= 1, the most global tokens a row
            may have. Needed only on JAX, which compiles static shapes
            (default there: 65, `<s>` and a 64-token question; the cost of
            global attention grows in proportion to it); TensorFlow and torch
            impose no bound unless one is given. A row over the bound is a
            `ValueError` naming it, raised before any work wherever the mask
            is concrete.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        hidden_states: `[B, T, D]` tensor.
        padding_mask: optional `[B, T]` bool or 0/1 int, true for real
            tokens. Padded tokens are never attended and output 0 before
            the output projection.
        global_mask: optional `[B, T]` bool or 0/1 int, true for global
            tokens, any number, anywhere.
        training: bool, whether dropout is active.

    Returns:
        `[B, T, D]` tensor.

    Example:

    >>> layer = LongformerSelfAttention(num_heads=4, key_dim=16, window=32)
    >>> x = keras.random.normal((2, 1000, 64))
    >>> global_mask = keras.ops.arange(1000)[None, :] == 0
    >>> layer(x, global_mask=global_mask).shape
    (2, 1000, 64)

    Reference:
    - [Beltagy, Peters, Cohan, Longformer: The Long-Document Transformer,
      2020](https://arxiv.org/abs/2004.05150)
    """

    def __init__(
        self,
        num_heads,
        key_dim,
        window,
        dilation=1,
        causal=False,
        dropout=0.0,
        use_bias=True,
        global_projections=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        seed=None,
        max_global_tokens=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = check_int("num_heads", num_heads, 1)
        self.key_dim = check_int("key_dim", key_dim, 1)
        self.window = check_int("window", window, 0)
        self.dilation = check_dilation(dilation, num_heads)
        self.causal = check_bool("causal", causal)
        self.dropout = check_rate("dropout", dropout)
        self.use_bias = check_bool("use_bias", use_bias)
        self.global_projections = check_bool("global_projections", global_projections)
        self.max_global_tokens = global_tokens.check_max_global_tokens(max_global_tokens)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.seed = seed
        self.supports_masking = False

    def build(self, hidden_states_shape, padding_mask_shape=None, global_mask_shape=None):
        hidden_dim = hidden_states_shape[-1]
        if hidden_dim is None:
            raise ValueError(
                "The last axis of `hidden_states` must be known. "
                f"Received: hidden_states.shape={tuple(hidden_states_shape)}"
            )
        self._query_dense = self._projection("query", hidden_states_shape)
        self._key_dense = self._projection("key", hidden_states_shape)
        self._value_dense = self._projection("value", hidden_states_shape)
        if self.global_projections:
            self._global_query_dense = self._projection("query_global", hidden_states_shape)
            self._global_key_dense = self._projection("key_global", hidden_states_shape)
            self._global_value_dense = self._projection("value_global", hidden_states_shape)
        self._output_dense = self._dense("abcd,cde->abe", (None, hidden_dim), "e", "output")
        self._output_dense.build((None, None, self.num_heads, self.key_dim))
        self._dropout_layer = keras.layers.Dropout(
            self.dropout, seed=self.seed, dtype=self.dtype_policy
        )

    def _projection(self, name, hidden_states_shape):
        """`[B, T, D]` -> `[B, T, N, H]` dense layer, built."""
        projection = self._dense(
            "abc,cde->abde", (None, self.num_heads, self.key_dim), "de", name
        )
        projection.build(hidden_states_shape)
        return projection

    def _dense(self, equation, output_shape, bias_axes, name):
        return keras.layers.EinsumDense(
            equation,
            output_shape=output_shape,
            bias_axes=bias_axes if self.use_bias else None,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name=name,
        )

    def call(self, hidden_states, padding_mask=None, global_mask=None, training=None):
        self._check_mask_shapes(hidden_states, padding_mask, global_mask)
        global_tokens.check_global_tokens(global_mask, padding_mask, self.max_global_tokens)
        global_inputs = {}
        if self.global_projections and global_mask is not None:
            global_inputs = dict(
                global_query=self._global_queries(hidden_states, padding_mask, global_mask),
                global_key=self._global_key_dense(hidden_states),
                global_value=self._global_value_dense(hidden_states),
            )
        dropout_fn = None
        if self.dropout > 0 and training:
            dropout_fn = lambda probs: self._dropout_layer(probs, training=True)
        attended = longformer_attention(
            self._query_dense(hidden_states),
            self._key_dense(hidden_states),
            self._value_dense(hidden_states),
            window=self.window,
            dilation=self.dilation,
            causal=self.causal,
            padding_mask=padding_mask,
            global_mask=global_mask,
            max_global_tokens=self.max_global_tokens,
            dropout_fn=dropout_fn,
            **global_inputs,
        )
        return self._output_dense(attended)

    def _global_queries(self, hidden_states, padding_mask, global_mask):
        """`[B, T, N, H]` global queries, projected on the global rows only.

        The op reads `global_query` on global rows only, so the other rows
        stay zero: `G x D x D` work instead of one more `T x D x D`
        projection. Rows are picked and put back with the op's own
        `GlobalSlots` (one-hot matmuls, exact in every dtype).
        """
        batch_size, length = ops.shape(hidden_states)[0], ops.shape(hidden_states)[1]
        is_global = as_bool_mask(global_mask, batch_size, length, False, "global_mask")
        if padding_mask is not None:
            is_global = ops.logical_and(
                is_global, as_bool_mask(padding_mask, batch_size, length, True, "padding_mask")
            )
        slots = GlobalSlots(is_global, self.max_global_tokens)
        rows = slots.gather(ops.expand_dims(hidden_states, 2))  # [B, G, 1, D]
        return slots.scatter(self._global_query_dense(ops.squeeze(rows, 2)))

    def _check_mask_shapes(self, hidden_states, padding_mask, global_mask):
        if len(hidden_states.shape) != 3:
            raise ValueError(
                "`hidden_states` must have shape [batch, seq, hidden]. "
                f"Received: hidden_states.shape={tuple(hidden_states.shape)}"
            )
        expected = tuple(hidden_states.shape[:2])
        for name, mask in (("padding_mask", padding_mask), ("global_mask", global_mask)):
            if mask is None:
                continue
            shape = tuple(mask.shape)
            if len(shape) != 2 or any(
                a is not None and b is not None and a != b for a, b in zip(shape, expected)
            ):
                raise ValueError(
                    f"`{name}` must have shape [batch, seq] = {expected}, matching "
                    f"`hidden_states`. Received: {name}.shape={shape}"
                )

    def compute_output_shape(self, hidden_states_shape, padding_mask_shape=None, global_mask_shape=None):
        return tuple(hidden_states_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "window": self.window,
                "dilation": self.dilation,
                "causal": self.causal,
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "global_projections": self.global_projections,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "seed": self.seed,
                "max_global_tokens": self.max_global_tokens,
            }
        )
        return config
