import math

import keras
from keras import ops

from keras_longformer.arguments import check_bool
from keras_longformer.arguments import check_dilation
from keras_longformer.ops.global_tokens import check_max_global_tokens
from keras_longformer.arguments import check_int
from keras_longformer.arguments import check_rate
from keras_longformer.layers._initializers import clone_initializer
from keras_longformer.layers._replayed_seeds import replayed_dropout_seeds
from keras_longformer.layers.longformer_self_attention import LongformerSelfAttention


@keras.saving.register_keras_serializable(package="keras_longformer")
def gelu_erf(x):
    """Exact GELU, `0.5 * x * (1 + erf(x / sqrt(2)))`.

    Written out because TensorFlow lowers `keras.activations.gelu` through
    `Erfc`, which tf2onnx passes to ONNX unconverted and onnxruntime refuses.
    """
    return 0.5 * x * (1.0 + ops.erf(x * ops.cast(1.0 / math.sqrt(2.0), x.dtype)))


@keras.saving.register_keras_serializable(package="keras_longformer")
class LongformerEncoderLayer(keras.layers.Layer):
    """One post-LayerNorm Longformer (RoBERTa) encoder layer.

    Shapes: `B` batch, `T` sequence length, `D` hidden size (the last axis
    of the input), `N` = `num_heads`, `H = D / N`.

    `x = LayerNorm(x + Dropout(LongformerSelfAttention(x)))`, then
    `x = LayerNorm(x + Dropout(Dense(GELU(Dense(x)))))`, as Hugging Face's
    `LongformerLayer`. GELU is the exact (erf) one. The window is one-sided:
    token `i` of a head with dilation `d` sees `i + m * d`, `m` in
    `[-window, window]` (`[-window, 0]` when `causal`), plus every global
    token.

    Args:
        num_heads: int >= 1 dividing the hidden size.
        intermediate_dim: int >= 1, the size of the feed-forward layer.
        window: int >= 0, the one-sided attention window.
        dilation: int >= 1, or a list of `num_heads` ints, one per head.
        causal: bool, when true no token sees a later one.
        dropout: float in `[0, 1)`, dropout after the attention and the
            feed-forward output.
        attention_dropout: float in `[0, 1)`, dropout on the attention
            probabilities.
        layer_norm_epsilon: float, epsilon of the two LayerNorms.
        kernel_initializer: initializer of the dense kernels.
        bias_initializer: initializer of the dense biases.
        max_global_tokens: optional int >= 1, the most global tokens a row
            may have; needed only on JAX (default 65). See
            `LongformerSelfAttention`.
        gradient_checkpointing: bool, when true a training call keeps only
            the layer's input for the backward pass and computes the rest
            again there (`keras.remat`): less memory, more time. Dropout
            draws the same masks in both passes.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        hidden_states: `[B, T, D]` tensor.
        padding_mask: optional `[B, T]` bool or 0/1 int, true for real tokens.
        global_mask: optional `[B, T]` bool or 0/1 int, true for global tokens.
        training: bool, whether dropout is active.

    Returns:
        `[B, T, D]` tensor.

    Example:

    >>> layer = LongformerEncoderLayer(num_heads=4, intermediate_dim=64, window=8)
    >>> x = keras.random.normal((2, 100, 32))
    >>> layer(x, global_mask=keras.ops.arange(100)[None, :] == 0).shape
    (2, 100, 32)

    Reference:
    - [Beltagy, Peters, Cohan, Longformer: The Long-Document Transformer,
      2020](https://arxiv.org/abs/2004.05150)
    """

    def __init__(
        self,
        num_heads,
        intermediate_dim,
        window,
        dilation=1,
        causal=False,
        dropout=0.0,
        attention_dropout=0.0,
        layer_norm_epsilon=1e-5,
        kernel_initializer=None,
        bias_initializer="zeros",
        max_global_tokens=None,
        gradient_checkpointing=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = check_int("num_heads", num_heads, 1)
        self.gradient_checkpointing = check_bool("gradient_checkpointing", gradient_checkpointing)
        self.intermediate_dim = check_int("intermediate_dim", intermediate_dim, 1)
        self.window = check_int("window", window, 0)
        self.dilation = check_dilation(dilation, num_heads)
        self.causal = check_bool("causal", causal)
        self.dropout = check_rate("dropout", dropout)
        self.attention_dropout = check_rate("attention_dropout", attention_dropout)
        self.layer_norm_epsilon = layer_norm_epsilon
        if kernel_initializer is None:
            kernel_initializer = keras.initializers.TruncatedNormal(stddev=0.02)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.max_global_tokens = check_max_global_tokens(max_global_tokens)
        self.supports_masking = False

    def build(self, hidden_states_shape, padding_mask_shape=None, global_mask_shape=None):
        hidden_dim = hidden_states_shape[-1]
        if hidden_dim is None or hidden_dim % self.num_heads:
            raise ValueError(
                "The hidden size (last axis of `hidden_states`) must be known and "
                f"divisible by num_heads={self.num_heads}. "
                f"Received: hidden_states.shape={tuple(hidden_states_shape)}"
            )
        self.hidden_dim = hidden_dim
        self.self_attention = LongformerSelfAttention(
            num_heads=self.num_heads,
            key_dim=hidden_dim // self.num_heads,
            window=self.window,
            dilation=self.dilation,
            causal=self.causal,
            dropout=self.attention_dropout,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            max_global_tokens=self.max_global_tokens,
            dtype=self.dtype_policy,
            name="self_attention",
        )
        self.self_attention.build(hidden_states_shape)
        self.attention_dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="attention_output_dropout"
        )
        self.attention_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon,
            dtype=self.dtype_policy,
            name="attention_layer_norm",
        )
        self.attention_layer_norm.build(hidden_states_shape)
        self.intermediate_dense = keras.layers.Dense(
            self.intermediate_dim,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name="intermediate_dense",
        )
        self.intermediate_dense.build(hidden_states_shape)
        self.output_dense = keras.layers.Dense(
            hidden_dim,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name="output_dense",
        )
        self.output_dense.build(tuple(hidden_states_shape[:-1]) + (self.intermediate_dim,))
        self.output_dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="output_dropout"
        )
        self.output_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon,
            dtype=self.dtype_policy,
            name="output_layer_norm",
        )
        self.output_layer_norm.build(hidden_states_shape)
        # Built inside a `keras.RematScope`, the sublayers would each be
        # recomputed on their own (and TensorFlow refuses their keyword
        # calls in a graph): this layer recomputes them together.
        for sublayer in self._flatten_layers(include_self=False):
            sublayer._remat_mode = None

    def rematerialized_call(self, layer_call, *args, **kwargs):
        """`keras.RematScope`: where Keras would recompute this layer, the
        layer's own checkpointing runs (tensors by position, dropout
        replayed), which TensorFlow's graphs accept; its sublayers are
        recomputed with it, not one by one."""
        if super().rematerialized_call(layer_call, *args, **kwargs) is layer_call:
            return layer_call

        def checkpointed_call(*args, **kwargs):
            self._checkpoint_this_call = True
            try:
                return layer_call(*args, **kwargs)
            finally:
                self._checkpoint_this_call = False

        return checkpointed_call

    def call(self, hidden_states, padding_mask=None, global_mask=None, training=None):
        if not training:
            return self._layer_call(hidden_states, padding_mask, global_mask, training)
        # One seed per training call, drawn here; every dropout mask of the
        # call comes from it, so a recomputation (gradient checkpointing)
        # draws the same masks, and the two modes train alike.
        dropout_layers = self._active_dropout_layers()
        if dropout_layers:
            seed = dropout_layers[0].seed_generator.next()
        else:
            seed = ops.zeros((2,), "int32")
        # Through float32 in both modes (the remat'ed call takes floats):
        # the same integers either way.
        seed_dtype = seed.dtype
        seed = ops.cast(seed, "float32")
        given = [mask is not None for mask in (padding_mask, global_mask)]

        def layer_call(seed, hidden_states, *masks):
            seed = ops.cast(seed, seed_dtype)
            masks = iter([ops.cast(mask, "int32") for mask in masks])
            padding, glob = (next(masks) if present else None for present in given)
            with replayed_dropout_seeds(dropout_layers, seed):
                return self._layer_call(hidden_states, padding, glob, True)

        masks = [mask for mask in (padding_mask, global_mask) if mask is not None]
        if self.gradient_checkpointing or getattr(self, "_checkpoint_this_call", False):
            # Tensors by position (TensorFlow's recompute_grad takes no
            # keyword arguments in a graph), the seed and 0/1 masks as
            # floats (it watches every input for a gradient, and warns on
            # integers); `layer_call` casts them back.
            layer_call = keras.remat(layer_call)
            masks = [ops.cast(mask, "float32") for mask in masks]
        return layer_call(seed, hidden_states, *masks)

    def _active_dropout_layers(self):
        layers = [self.self_attention._dropout_layer, self.attention_dropout_layer, self.output_dropout_layer]
        return [layer for layer in layers if layer.rate > 0]  # only these have seed generators

    def _layer_call(self, hidden_states, padding_mask, global_mask, training):
        attended = self.self_attention(
            hidden_states,
            padding_mask=padding_mask,
            global_mask=global_mask,
            training=training,
        )
        attended = self.attention_dropout_layer(attended, training=training)
        hidden_states = self.attention_layer_norm(hidden_states + attended)
        feed_forward = gelu_erf(self.intermediate_dense(hidden_states))
        feed_forward = self.output_dense(feed_forward)
        feed_forward = self.output_dropout_layer(feed_forward, training=training)
        return self.output_layer_norm(hidden_states + feed_forward)

    def compute_output_shape(self, hidden_states_shape, padding_mask_shape=None, global_mask_shape=None):
        return tuple(hidden_states_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "window": self.window,
                "dilation": self.dilation,
                "causal": self.causal,
                "dropout": self.dropout,
                "attention_dropout": self.attention_dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "max_global_tokens": self.max_global_tokens,
                "gradient_checkpointing": self.gradient_checkpointing,
            }
        )
        return config
