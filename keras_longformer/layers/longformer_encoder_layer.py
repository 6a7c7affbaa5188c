import math

import keras
from keras import ops

from keras_longformer.arguments import check_bool
from keras_longformer.arguments import check_dilation
from keras_longformer.ops.global_tokens import check_max_global_tokens
from keras_longformer.arguments import check_int
from keras_longformer.arguments import check_rate
from keras_longformer.layers._initializers import clone_initializer
from keras_longformer.layers.longformer_self_attention import LongformerSelfAttention


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
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = check_int("num_heads", num_heads, 1)
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

    def call(self, hidden_states, padding_mask=None, global_mask=None, training=None):
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
            }
        )
        return config
