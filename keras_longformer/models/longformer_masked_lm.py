import keras
from keras import ops

from keras_longformer.layers.longformer_encoder_layer import gelu_erf
from keras_longformer.models.longformer_task import LongformerTask
from keras_longformer.models.longformer_task import check_backbone
from keras_longformer.models.longformer_task import freeze_unused_pooler
from keras_longformer.models.longformer_task import fine_tuning_optimizer


@keras.saving.register_keras_serializable(package="keras_longformer")
class LongformerTiedLogits(keras.layers.Layer):
    """Logits over the vocabulary with the token embedding as decoder.

    `x @ E^T + bias`, where `E` `[V, D]` is the token embedding of the
    backbone: the decoder weights are tied, only the bias `[V]` is owned.
    The embedding is read through a reference, not tracked as a sublayer,
    so it is saved once, with the backbone; the task model that owns both
    re-ties them when it is rebuilt (`from_config` goes through
    `__init__`), so this layer is not restored on its own.

    Args:
        token_embedding: the backbone's `keras.layers.Embedding`.
        **kwargs: base layer arguments.

    Call arguments:
        x: `[B, T, D]` tensor.

    Returns:
        `[B, T, V]` tensor.
    """

    def __init__(self, token_embedding, **kwargs):
        super().__init__(**kwargs)
        self._token_embedding = lambda: token_embedding
        self.vocabulary_size = token_embedding.input_dim

    def build(self, x_shape):
        self.bias = self.add_weight(
            name="bias", shape=(self.vocabulary_size,), initializer="zeros"
        )

    def call(self, x):
        embeddings = ops.cast(self._token_embedding().embeddings, x.dtype)
        logits = ops.matmul(x, ops.transpose(embeddings))
        return logits + ops.cast(self.bias, x.dtype)

    def compute_output_shape(self, x_shape):
        return tuple(x_shape[:-1]) + (self.vocabulary_size,)


@keras.saving.register_keras_serializable(package="keras_longformer")
class LongformerMaskedLMHead(keras.layers.Layer):
    """RoBERTa's masked-LM head: dense, GELU, LayerNorm, tied decoder + bias.

    Args:
        token_embedding: the backbone's `keras.layers.Embedding` (tied).
        layer_norm_epsilon: float.
        **kwargs: base layer arguments.

    Call arguments:
        x: `[B, T, D]` tensor.

    Returns:
        `[B, T, V]` logits.
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

    def call(self, x):
        return self.decoder(self.layer_norm(gelu_erf(self.dense(x))))

    def compute_output_shape(self, x_shape):
        return self.decoder.compute_output_shape(x_shape)


@keras.saving.register_keras_serializable(package="keras_longformer")
class LongformerMaskedLM(LongformerTask):
    """Masked language model on a `LongformerBackbone`, decoder tied to the embedding.

    Shapes: `B` batch, `T` sequence length, `V` vocabulary size.

    Hugging Face's `LongformerForMaskedLM` head (dense, GELU, LayerNorm,
    then the transposed token embedding plus a bias) on every position.

    The backbone's pooler does not reach these outputs: it is frozen
    (`trainable=False`) so that training sees no weight without a gradient.

    Args:
        backbone: a `LongformerBackbone`.
        dtype: optional dtype policy of the head (defaults to the backbone's).
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: the backbone's dict (`token_ids`, `padding_mask`, `global_mask`).

    Returns:
        `[B, T, V]` float32 logits.

    `compile()` defaults: AdamW(5e-5, weight decay 0.01, clip norm 1) and
    sparse categorical cross-entropy ignoring label -100: give the original
    token at masked positions and -100 everywhere else, as Hugging Face.

    Example:

    >>> mlm = LongformerMaskedLM(backbone)
    >>> mlm.compile()
    >>> mlm.fit(masked_features, labels)  # labels -100 where not masked

    Reference:
    - [Beltagy, Peters, Cohan, Longformer: The Long-Document Transformer,
      2020](https://arxiv.org/abs/2004.05150)
    """

    def __init__(self, backbone, dtype=None, **kwargs):
        check_backbone(backbone, "LongformerMaskedLM")
        freeze_unused_pooler(backbone)
        dtype = dtype or backbone.dtype_policy
        # === Layers ===
        lm_head = LongformerMaskedLMHead(
            backbone.token_embedding,
            layer_norm_epsilon=backbone.layer_norm_epsilon,
            dtype=dtype,
            name="lm_head",
        )
        as_float32 = keras.layers.Activation(None, dtype="float32", name="logits")
        # === Functional model ===
        inputs = backbone.input
        outputs = as_float32(lm_head(backbone(inputs)["sequence_output"]))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        # === Config ===
        self.backbone = backbone
        self.lm_head = lm_head

    def _default_compile(self):
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-100)
        return fine_tuning_optimizer(), loss, None
