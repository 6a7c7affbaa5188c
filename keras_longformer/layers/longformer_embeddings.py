import keras
import numpy as np
from keras import ops

from keras_longformer.arguments import check_int
from keras_longformer.arguments import check_rate
from keras_longformer.layers._embedding_table import embedding_table
from keras_longformer.layers._initializers import clone_initializer
from keras_longformer.ops.global_tokens import concrete_value


@keras.saving.register_keras_serializable(package="keras_longformer")
class LongformerEmbeddings(keras.layers.Layer):
    """Token, position and token-type embeddings, as RoBERTa/Longformer.

    Shapes: `B` batch, `T` sequence length, `D` = `hidden_dim`.

    Sums the token embedding, the position embedding and the embedding of
    token type 0, then applies LayerNorm and dropout. Position ids are
    computed from the token ids exactly as RoBERTa (Hugging Face's
    `create_position_ids_from_input_ids`): the `k`-th non-pad token
    (`k = 1, 2, ...`) gets position `pad_token_id + k`, and every pad token
    gets position `pad_token_id`. The position table therefore has
    `max_sequence_length + pad_token_id + 1` rows, which is Hugging Face's
    `max_position_embeddings` (4098 for `allenai/longformer-base-4096`).

    A sequence longer than `max_sequence_length` is an error. When the
    length is static (a plain call on arrays, or a traced function with a
    fixed length) it is a `ValueError` raised before any computation. When
    the length is only known at run time (a traced function with a `None`
    length, an exported graph), the rows the sequence needs are sliced
    from the position table, and that slice fails in every backend and on
    every device with an error naming the node
    `sequence_longer_than_max_sequence_length`, rather than silently
    reading out of range.

    Args:
        vocabulary_size: int >= 1, number of token ids.
        hidden_dim: int >= 1, size of each embedding.
        max_sequence_length: int >= 1, the longest sequence.
        type_vocab_size: int >= 1, rows of the token-type table (only row 0
            is used; kept so that checkpoints with more rows load).
        pad_token_id: int >= 0, the id of the padding token.
        dropout: float in `[0, 1)`, dropout after the LayerNorm.
        layer_norm_epsilon: float, epsilon of the LayerNorm.
        embeddings_initializer: initializer of the three tables.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        token_ids: `[B, T]` int tensor.
        training: bool, whether dropout is active.

    Returns:
        `[B, T, D]` tensor.

    Example:

    >>> layer = LongformerEmbeddings(
    ...     vocabulary_size=100, hidden_dim=16, max_sequence_length=64)
    >>> layer(np.array([[0, 5, 6, 2, 1, 1]])).shape
    (1, 6, 16)

    Reference:
    - [Liu et al., RoBERTa: A Robustly Optimized BERT Pretraining Approach,
      2019](https://arxiv.org/abs/1907.11692)
    """

    def __init__(
        self,
        vocabulary_size,
        hidden_dim,
        max_sequence_length,
        type_vocab_size=1,
        pad_token_id=1,
        dropout=0.0,
        layer_norm_epsilon=1e-5,
        embeddings_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary_size = check_int("vocabulary_size", vocabulary_size, 1)
        self.hidden_dim = check_int("hidden_dim", hidden_dim, 1)
        self.max_sequence_length = check_int("max_sequence_length", max_sequence_length, 1)
        self.type_vocab_size = check_int("type_vocab_size", type_vocab_size, 1)
        self.pad_token_id = check_int("pad_token_id", pad_token_id, 0)
        if pad_token_id >= vocabulary_size:
            raise ValueError(
                "`pad_token_id` must be a token id, < vocabulary_size="
                f"{vocabulary_size}. Received: pad_token_id={pad_token_id}"
            )
        self.dropout = check_rate("dropout", dropout)
        self.layer_norm_epsilon = layer_norm_epsilon
        if embeddings_initializer is None:
            embeddings_initializer = keras.initializers.TruncatedNormal(stddev=0.02)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)

        self.token_embedding = self._embedding(vocabulary_size, "token_embedding")
        self.position_embedding = self._embedding(
            self.num_positions, "position_embedding"
        )
        self.token_type_embedding = self._embedding(
            type_vocab_size, "token_type_embedding"
        )
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm"
        )
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="dropout"
        )

    @property
    def num_positions(self):
        """Rows of the position table: Hugging Face's `max_position_embeddings`."""
        return self.max_sequence_length + self.pad_token_id + 1

    def _embedding(self, rows, name):
        initializer = self.embeddings_initializer
        return keras.layers.Embedding(
            rows,
            self.hidden_dim,
            embeddings_initializer=clone_initializer(initializer),
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, token_ids_shape):
        self.token_embedding.build(token_ids_shape)
        self.position_embedding.build(token_ids_shape)
        self.token_type_embedding.build(token_ids_shape)
        self.layer_norm.build(tuple(token_ids_shape) + (self.hidden_dim,))

    def position_ids(self, token_ids):
        """RoBERTa position ids of `token_ids` `[B, T]`: `[B, T]` int32."""
        is_token = ops.cast(ops.not_equal(token_ids, self.pad_token_id), "int32")
        return ops.cumsum(is_token, axis=1) * is_token + self.pad_token_id

    def call(self, token_ids, training=None):
        token_ids = ops.convert_to_tensor(token_ids)
        if len(token_ids.shape) != 2:
            raise ValueError(
                "`token_ids` must have shape [batch, seq]. "
                f"Received: token_ids.shape={tuple(token_ids.shape)}"
            )
        if "int" not in str(token_ids.dtype):
            token_ids = ops.cast(token_ids, "int32")
        length = token_ids.shape[1]
        if length is not None and length > self.max_sequence_length:
            raise ValueError(
                f"The sequence has {length} tokens, more than "
                f"max_sequence_length={self.max_sequence_length}. Truncate it, or "
                "extend the model with "
                "`keras_longformer.models.extend_position_embeddings`."
            )
        self._check_token_ids(token_ids)
        if length is None:
            length = ops.shape(token_ids)[1]
        position_ids = self.position_ids(token_ids)
        with keras.name_scope("sequence_longer_than_max_sequence_length"):
            # Only the rows this length can use; fails (never reads out of
            # range) when the run-time length exceeds max_sequence_length.
            table = ops.slice(
                embedding_table(self.position_embedding),
                [0, 0],
                [length + self.pad_token_id + 1, self.hidden_dim],
            )
        positions = ops.take(table, position_ids, axis=0)
        tokens = self.token_embedding(token_ids)
        token_type = embedding_table(self.token_type_embedding)[0]
        embeddings = (
            tokens
            + ops.cast(positions, tokens.dtype)
            + ops.cast(token_type, tokens.dtype)
        )
        embeddings = self.layer_norm(embeddings)
        embeddings = self._poison_unknown_ids(token_ids, embeddings)
        return self.dropout_layer(embeddings, training=training)

    def _check_token_ids(self, token_ids):
        """Ids outside `[0, vocabulary_size)` are a named error when concrete."""
        ids = concrete_value(token_ids)
        if ids is None or ids.size == 0:
            return
        bad = (ids < 0) | (ids >= self.vocabulary_size)
        if bad.any():
            raise ValueError(
                f"`token_ids` must be in [0, vocabulary_size={self.vocabulary_size}). "
                f"Received: the id {int(ids[bad].flat[0])} at position "
                f"{tuple(int(i) for i in np.argwhere(bad)[0])}"
            )

    def _poison_unknown_ids(self, token_ids, embeddings):
        """NaN where an id is outside the vocabulary (only reachable in a trace).

        Backends differ on an out-of-range lookup (an error, a clamped row,
        zeros on some devices); NaN makes every one of them visibly wrong.
        """
        unknown = ops.logical_or(
            ops.less(token_ids, 0), ops.greater_equal(token_ids, self.vocabulary_size)
        )
        # A [batch, sequence] bias, sqrt(-0) = 0 or sqrt(-1) = NaN, broadcast
        # over the features. Arithmetic, not a select: tf2onnx lowers a
        # select to `c * x + (1 - c) * y`, where 0 * NaN poisons every row.
        poison = ops.sqrt(-ops.cast(unknown, "float32"))
        poison = ops.cast(poison, embeddings.dtype)
        return embeddings + poison[:, :, None]

    def compute_output_shape(self, token_ids_shape):
        return tuple(token_ids_shape) + (self.hidden_dim,)

    def compute_output_spec(self, token_ids, training=None):
        # Keras passes only symbolic tensors' shapes to `compute_output_shape`
        # (a numpy batch, as `backbone.compute_output_spec(inputs)` gives
        # it, would arrive as None); any array has a shape.
        return keras.KerasTensor(
            self.compute_output_shape(token_ids.shape), dtype=self.compute_dtype
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "hidden_dim": self.hidden_dim,
                "max_sequence_length": self.max_sequence_length,
                "type_vocab_size": self.type_vocab_size,
                "pad_token_id": self.pad_token_id,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "embeddings_initializer": keras.initializers.serialize(
                    self.embeddings_initializer
                ),
            }
        )
        return config
