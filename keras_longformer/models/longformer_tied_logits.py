import keras
from keras import ops

from keras_longformer.layers._embedding_table import embedding_table


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
        embeddings = ops.cast(embedding_table(self._token_embedding()), x.dtype)
        logits = ops.matmul(x, ops.transpose(embeddings))
        return logits + ops.cast(self.bias, x.dtype)

    def compute_output_shape(self, x_shape):
        return tuple(x_shape[:-1]) + (self.vocabulary_size,)
