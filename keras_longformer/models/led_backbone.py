"""`LEDBackbone`: the Longformer Encoder-Decoder (BART with Longformer attention in the encoder)."""

import keras
from keras import ops
from keras_hub.layers import PositionEmbedding
from keras_hub.layers import ReversibleEmbedding
from keras_hub.layers import TransformerDecoder
from keras_hub.models import Backbone

from keras_longformer.arguments import check_int
from keras_longformer.arguments import check_rate
from keras_longformer.layers.longformer_encoder_layer import LongformerEncoderLayer
from keras_longformer.layers.longformer_encoder_layer import gelu_erf
from keras_longformer.models.global_token_check import GlobalTokenCheck
from keras_longformer.models.longformer_backbone import windows_and_dilations
from keras_longformer.ops.global_tokens import check_max_global_tokens


def _initializer():
    # BART's and LED's `init_std`.
    return keras.initializers.TruncatedNormal(stddev=0.02)


@keras.saving.register_keras_serializable(package="keras_longformer")
class LEDBackbone(GlobalTokenCheck, Backbone):
    """The Longformer Encoder-Decoder: long inputs in, a short sequence out.

    Shapes: `B` batch, `S` encoder length (`1 <= S <=
    max_encoder_sequence_length`), `T` decoder length (`1 <= T <=
    max_decoder_sequence_length`), `D` = `hidden_dim`.

    The network of Hugging Face's `LEDModel` (Beltagy et al., section 6):
    BART, whose encoder self-attention is Longformer's. One token embedding
    is shared by encoder and decoder. The encoder: token + learned position
    embeddings (position `k` for the `k`-th token, from 0), a LayerNorm,
    then `num_layers` post-LayerNorm Longformer layers (sliding window,
    dilation, global tokens). The decoder: token + its own learned
    positions, a LayerNorm, then `num_layers` post-LayerNorm BART decoder
    layers (causal self-attention, cross-attention to every encoder
    output, GELU feed-forward; keras-hub's `TransformerDecoder`).

    The encoder's window is one-sided: token `i` of a head with dilation
    `d` sees the tokens `i + m * d`, `m` in `[-window, window]`, plus every
    global token; Hugging Face's `attention_window=1024` is `window=512`.
    Inputs need no padding to a window multiple.

    Args:
        vocabulary_size: int >= 1, number of token ids.
        num_layers: int >= 1, encoder layers, and decoder layers.
        num_heads: int >= 1, attention heads of every attention; divides
            `hidden_dim`.
        hidden_dim: int >= 1, the hidden size `D`.
        intermediate_dim: int >= 1, the feed-forward size.
        window: int >= 0, or a list of `num_layers` ints: the encoder's.
        dilation: int >= 1, or one entry per layer (an int, or a list of
            `num_heads` ints): the encoder's.
        max_encoder_sequence_length: int >= 1, the longest input.
        max_decoder_sequence_length: int >= 1, the longest output.
        dropout: float in `[0, 1)`, dropout of embeddings and layers.
        attention_dropout: float in `[0, 1)`, on the encoder's attention
            probabilities.
        max_global_tokens: optional int >= 1, the most global tokens an
            encoder row may have (needed on JAX; see `LongformerBackbone`).
        gradient_checkpointing: bool, recompute each encoder layer in the
            backward pass of a training step (see `LongformerBackbone`).
        dtype: optional dtype policy of every layer.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: dict with `encoder_token_ids`, `encoder_padding_mask`,
            `encoder_global_mask` (`[B, S]`; true for global tokens, such
            as `<s>`), `decoder_token_ids`, `decoder_padding_mask` (`[B, T]`).

    Returns:
        dict with `encoder_sequence_output` `[B, S, D]` and
        `decoder_sequence_output` `[B, T, D]`.

    Example:

    >>> backbone = LEDBackbone(vocabulary_size=1000, num_layers=2, num_heads=4,
    ...     hidden_dim=64, intermediate_dim=128, window=32)
    >>> outputs = backbone({
    ...     "encoder_token_ids": np.random.randint(3, 1000, (1, 3000)),
    ...     "encoder_padding_mask": np.ones((1, 3000), "int32"),
    ...     "encoder_global_mask": np.arange(3000)[None] == 0,
    ...     "decoder_token_ids": np.random.randint(3, 1000, (1, 40)),
    ...     "decoder_padding_mask": np.ones((1, 40), "int32"),
    ... })

    Reference:
    - [Beltagy, Peters, Cohan, Longformer: The Long-Document Transformer,
      2020](https://arxiv.org/abs/2004.05150), section 6
    """

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        window,
        dilation=1,
        max_encoder_sequence_length=16384,
        max_decoder_sequence_length=1024,
        dropout=0.1,
        attention_dropout=0.0,
        max_global_tokens=None,
        gradient_checkpointing=False,
        dtype=None,
        **kwargs,
    ):
        for name, value in (("vocabulary_size", vocabulary_size), ("num_layers", num_layers),
                            ("num_heads", num_heads), ("hidden_dim", hidden_dim),
                            ("intermediate_dim", intermediate_dim),
                            ("max_encoder_sequence_length", max_encoder_sequence_length),
                            ("max_decoder_sequence_length", max_decoder_sequence_length)):
            check_int(name, value, 1)
        if hidden_dim % num_heads:
            raise ValueError(
                f"`hidden_dim` must be divisible by `num_heads`. Received: "
                f"hidden_dim={hidden_dim}, num_heads={num_heads}"
            )
        check_rate("dropout", dropout)
        check_rate("attention_dropout", attention_dropout)
        check_max_global_tokens(max_global_tokens)
        windows, dilations = windows_and_dilations(window, dilation, num_layers, num_heads)

        # === Layers ===
        self.token_embedding = ReversibleEmbedding(
            vocabulary_size, hidden_dim, embeddings_initializer=_initializer(), dtype=dtype,
            name="token_embedding",
        )
        self.encoder_position_embedding, self.decoder_position_embedding = (
            PositionEmbedding(length, initializer=_initializer(), dtype=dtype, name=f"{part}_position_embedding")
            for part, length in (("encoder", max_encoder_sequence_length),
                                 ("decoder", max_decoder_sequence_length))
        )
        self.encoder_embeddings_layer_norm, self.decoder_embeddings_layer_norm = (
            keras.layers.LayerNormalization(epsilon=1e-5, dtype=dtype, name=f"{part}_embeddings_layer_norm")
            for part in ("encoder", "decoder")
        )
        self.encoder_embeddings_dropout, self.decoder_embeddings_dropout = (
            keras.layers.Dropout(dropout, dtype=dtype, name=f"{part}_embeddings_dropout")
            for part in ("encoder", "decoder")
        )
        self.encoder_layers = [
            LongformerEncoderLayer(
                num_heads=num_heads, intermediate_dim=intermediate_dim, window=windows[i],
                dilation=dilations[i], dropout=dropout, attention_dropout=attention_dropout,
                layer_norm_epsilon=1e-5, kernel_initializer=_initializer(),
                max_global_tokens=max_global_tokens, gradient_checkpointing=gradient_checkpointing,
                dtype=dtype, name=f"encoder_layer_{i}",
            )
            for i in range(num_layers)
        ]
        self.decoder_layers = [
            TransformerDecoder(
                intermediate_dim=intermediate_dim, num_heads=num_heads, dropout=dropout,
                activation=gelu_erf, layer_norm_epsilon=1e-5,
                kernel_initializer=_initializer(), dtype=dtype, name=f"decoder_layer_{i}",
            )
            for i in range(num_layers)
        ]

        # === Functional model ===
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name)
            for name in ("encoder_token_ids", "encoder_padding_mask", "encoder_global_mask",
                         "decoder_token_ids", "decoder_padding_mask")
        }
        encoder_padding = ops.not_equal(inputs["encoder_padding_mask"], 0)
        encoder_global = ops.not_equal(inputs["encoder_global_mask"], 0)
        x = self.embed("encoder", inputs["encoder_token_ids"])
        for layer in self.encoder_layers:
            x = layer(x, padding_mask=encoder_padding, global_mask=encoder_global)
        encoder_output = x
        x = self.embed("decoder", inputs["decoder_token_ids"])
        for layer in self.decoder_layers:
            x = layer(
                decoder_sequence=x,
                encoder_sequence=encoder_output,
                decoder_padding_mask=inputs["decoder_padding_mask"],
                encoder_padding_mask=inputs["encoder_padding_mask"],
            )
        super().__init__(
            inputs=inputs,
            outputs={"encoder_sequence_output": encoder_output, "decoder_sequence_output": x},
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.window = window if isinstance(window, int) else list(windows)
        self.dilation = dilation if isinstance(dilation, int) else list(dilations)
        self.max_encoder_sequence_length = max_encoder_sequence_length
        self.max_decoder_sequence_length = max_decoder_sequence_length
        self.dropout = float(dropout)
        self.attention_dropout = float(attention_dropout)
        self.max_global_tokens = max_global_tokens
        self.gradient_checkpointing = gradient_checkpointing

    def check_lengths(self, encoder_token_ids=None, decoder_token_ids=None):
        """A `ValueError` naming the input longer than its positions, where
        the length is static (eager calls, JAX, `generate`)."""
        for key, ids, limit in (
            ("encoder_token_ids", encoder_token_ids, self.max_encoder_sequence_length),
            ("decoder_token_ids", decoder_token_ids, self.max_decoder_sequence_length),
        ):
            length = None if ids is None else ids.shape[-1]
            if length is not None and length > limit:
                part = key.split("_")[0]
                raise ValueError(
                    f"`{key}` holds {length} tokens, more than the {part}'s positions: "
                    f"max_{part}_sequence_length={limit}. Received: {key}.shape={tuple(ids.shape)}"
                )

    def call(self, inputs, training=None, mask=None):
        self.check_lengths(inputs.get("encoder_token_ids"), inputs.get("decoder_token_ids"))
        return super().call(inputs, training=training, mask=mask)

    def embed(self, part, token_ids, start_index=0):
        """Token plus position embeddings, normalized: the input of the
        encoder's or decoder's (`part`) first layer; `start_index` is the
        position of the first token (a decoder cache's)."""
        tokens = self.token_embedding(token_ids)
        positions = getattr(self, f"{part}_position_embedding")(tokens, start_index=start_index)
        x = getattr(self, f"{part}_embeddings_layer_norm")(tokens + positions)
        return getattr(self, f"{part}_embeddings_dropout")(x)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "window": self.window,
                "dilation": self.dilation,
                "max_encoder_sequence_length": self.max_encoder_sequence_length,
                "max_decoder_sequence_length": self.max_decoder_sequence_length,
                "dropout": self.dropout,
                "attention_dropout": self.attention_dropout,
                "max_global_tokens": self.max_global_tokens,
                "gradient_checkpointing": self.gradient_checkpointing,
            }
        )
        return config
