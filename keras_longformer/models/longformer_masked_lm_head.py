import keras
from keras import ops

from keras_longformer.layers.longformer_encoder_layer import gelu_erf
from keras_longformer.models.longformer_tied_logits import LongformerTiedLogits


@keras.saving.register_keras_serializable(package="keras_longformer")
class LongformerMaskedLMHead(keras.layers.Layer):
    """RoBERTa's masked-LM head: dense, GELU, LayerNorm, tied decoder + bias.

    Args:
        token_embedding: the backbone's `keras.layers.Embedding` (tied).
        layer_norm_epsilon: float.
        **kwargs: base layer arguments.

    Call arguments:
        x: `[B, T, D]` tensor.
        mask_positions: optional `[B, P]` int, the positions to compute
            logits at (a masked LM needs only its masked tokens: at 4,096
            tokens and 50,265 words the full logits are 0.8 GB a sequence).

    Returns:
        `[B, T, V]` logits, or `[B, P, V]` with `mask_positions`.
    """

    def __init__(self, token_embedding, layer_norm_epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(
            token_embedding.output_dim,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            dtype=self.dtype_policy,
            name="dense",
        )
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm"
        )
        self.decoder = LongformerTiedLogits(
            token_embedding, dtype=self.dtype_policy, name="decoder"
        )

    def build(self, x_shape):
        self.dense.build(x_shape)
        self.layer_norm.build(x_shape)
        self.decoder.build(x_shape)

    @property
    def bias(self):
        return self.decoder.bias

    def call(self, x, mask_positions=None):
        if mask_positions is not None:
            positions = ops.cast(mask_positions, "int32")[..., None]
            x = ops.take_along_axis(x, positions, axis=1)
        return self.decoder(self.layer_norm(gelu_erf(self.dense(x))))

    def compute_output_shape(self, x_shape, mask_positions_shape=None):
        if mask_positions_shape is not None:
            x_shape = tuple(mask_positions_shape) + (x_shape[-1],)
        return self.decoder.compute_output_shape(x_shape)
