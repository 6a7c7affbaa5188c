import keras
from keras import ops
from keras_hub.models import Backbone

from keras_longformer.arguments import check_bool
from keras_longformer.arguments import check_dilation
from keras_longformer.arguments import check_int
from keras_longformer.arguments import check_rate
from keras_longformer.layers.longformer_embeddings import LongformerEmbeddings
from keras_longformer.layers.longformer_encoder_layer import LongformerEncoderLayer
from keras_longformer.models.global_token_check import GlobalTokenCheck
from keras_longformer.ops.global_tokens import check_max_global_tokens


def _per_layer(name, value, num_layers):
    """`value` as a list of `num_layers` entries (one value, or one per layer)."""
    if isinstance(value, (list, tuple)):
        if len(value) != num_layers:
            raise ValueError(
                f"`{name}` must be one value or a list of num_layers={num_layers} "
                f"values, one per layer. Received: {name}={value!r}"
            )
        return list(value)
    return [value] * num_layers


def windows_and_dilations(window, dilation, num_layers, num_heads):
    """Checked per-layer windows and dilations, `(windows, dilations)`."""
    windows = _per_layer("window", window, num_layers)
    for value in windows:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(
                "`window` must be an int >= 0 or a list of num_layers ints >= 0. "
                f"Received: window={window!r}"
            )
    dilations = _per_layer("dilation", dilation, num_layers)
    for value in dilations:
        try:
            check_dilation(value, num_heads)
        except ValueError:
            raise ValueError(
                "`dilation` must be an int >= 1, or a list of num_layers="
                f"{num_layers} entries, each an int >= 1 or a list of "
                f"num_heads={num_heads} ints >= 1. Received: dilation={dilation!r}"
            ) from None
    return windows, dilations


@keras.saving.register_keras_serializable(package="keras_longformer")
class LongformerBackbone(GlobalTokenCheck, Backbone):
    """The Longformer encoder: embeddings, encoder layers and pooler.

    Shapes: `B` batch, `T` sequence length (any `1 <= T <=
    max_sequence_length`), `D` = `hidden_dim`.

    A keras-hub `Backbone` (so `save_to_preset` and `from_preset` work, and
    the task models and preprocessors find it) and a functional Keras model
    with a dict in and a dict out, the network of
    Hugging Face's `LongformerModel` (RoBERTa with Longformer attention):
    RoBERTa embeddings (position `pad_token_id + k` for the `k`-th real
    token, so published checkpoints work unchanged), `num_layers`
    post-LayerNorm encoder layers with exact GELU, and a pooler
    (dense + tanh on the first token).

    Position ids come from `token_ids` (not from `padding_mask`), as in
    Hugging Face: padded positions must hold `pad_token_id`. A sequence
    longer than `max_sequence_length` is a `ValueError` when its length is
    static, and an error naming `sequence_longer_than_max_sequence_length`
    when it is only known at run time (see `LongformerEmbeddings`); never a
    silent out-of-range read.

    The window is one-sided: token `i` of a head with dilation `d` sees the
    tokens `i + m * d`, `m` in `[-window, window]` (`[-window, 0]` when
    `causal`), plus every global token; Hugging Face's
    `attention_window=512` is `window=256`. Cost grows as `T * window`.

    Args:
        vocabulary_size: int >= 1, number of token ids.
        num_layers: int >= 1, number of encoder layers.
        num_heads: int >= 1, attention heads per layer; divides `hidden_dim`.
        hidden_dim: int >= 1, the hidden size `D`.
        intermediate_dim: int >= 1, the feed-forward size.
        window: int >= 0, or a list of `num_layers` ints, one per layer.
        dilation: int >= 1; or a list of `num_layers` entries, one per
            layer, each an int or a list of `num_heads` ints (one per head,
            as the paper dilates two heads of the upper layers).
        causal: bool, when true no token sees a later one (language models).
        max_sequence_length: int >= 1, the longest sequence.
        type_vocab_size: int >= 1, rows of the token-type table.
        pad_token_id: int, the padding token; its position is special.
        dropout: float in `[0, 1)`, dropout of embeddings and layers.
        attention_dropout: float in `[0, 1)`, dropout on attention probabilities.
        layer_norm_epsilon: float, epsilon of every LayerNorm.
        max_global_tokens: optional int >= 1, the most global tokens a row
            may have. Needed only on JAX, which compiles static shapes
            (default there: 65, `<s>` and a 64-token question; the cost of
            global attention grows in proportion to it); TensorFlow and torch
            impose no bound unless one is given. A row over the bound is a
            `ValueError` naming it, raised before any work in a call on
            concrete inputs and on every batch of `fit`, `evaluate` and
            `predict`.
        gradient_checkpointing: bool, when true each encoder layer keeps
            only its input for the backward pass of a training step and
            computes the rest again there: peak training memory falls from
            every layer's activations to one layer's, for about one more
            forward pass of time. Outputs, losses and gradients are the
            same (dropout draws the same masks in both passes).
        dtype: optional dtype policy of every layer (e.g. `"bfloat16"`).
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: dict with
            `token_ids`: `[B, T]` int;
            `padding_mask`: `[B, T]` bool or 0/1 int, true for real tokens;
            `global_mask`: `[B, T]` bool or 0/1 int, true for global tokens
            (e.g. the first token for classification, the question for QA).
            Numpy arrays of any int width or bool work in a plain call.

    Returns:
        dict with `sequence_output` `[B, T, D]` and `pooled_output` `[B, D]`.

    Example:

    >>> backbone = LongformerBackbone(
    ...     vocabulary_size=1000, num_layers=2, num_heads=4, hidden_dim=64,
    ...     intermediate_dim=128, window=[16, 32], max_sequence_length=4096)
    >>> token_ids = np.random.randint(3, 1000, size=(2, 3000))
    >>> outputs = backbone({
    ...     "token_ids": token_ids,
    ...     "padding_mask": np.ones((2, 3000), "int32"),
    ...     "global_mask": np.arange(3000)[None, :] == 0,
    ... })
    >>> outputs["sequence_output"].shape, outputs["pooled_output"].shape
    ((2, 3000, 64), (2, 64))

    Reference:
    - [Beltagy, Peters, Cohan, Longformer: The Long-Document Transformer,
      2020](https://arxiv.org/abs/2004.05150)
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
        causal=False,
        max_sequence_length=4096,
        type_vocab_size=1,
        pad_token_id=1,
        dropout=0.1,
        attention_dropout=0.1,
        layer_norm_epsilon=1e-5,
        max_global_tokens=None,
        gradient_checkpointing=False,
        dtype=None,
        **kwargs,
    ):
        check_max_global_tokens(max_global_tokens)
        check_bool("gradient_checkpointing", gradient_checkpointing)
        check_int("num_layers", num_layers, 1)
        check_int("num_heads", num_heads, 1)
        check_int("hidden_dim", hidden_dim, 1)
        if hidden_dim % num_heads:
            raise ValueError(
                f"`hidden_dim` must be divisible by `num_heads`. Received: "
                f"hidden_dim={hidden_dim}, num_heads={num_heads}"
            )
        check_rate("dropout", dropout)
        check_rate("attention_dropout", attention_dropout)
        windows, dilations = windows_and_dilations(window, dilation, num_layers, num_heads)

        # === Layers ===
        embeddings = LongformerEmbeddings(
            vocabulary_size=vocabulary_size,
            hidden_dim=hidden_dim,
            max_sequence_length=max_sequence_length,
            type_vocab_size=type_vocab_size,
            pad_token_id=pad_token_id,
            dropout=dropout,
            layer_norm_epsilon=layer_norm_epsilon,
            dtype=dtype,
            name="embeddings",
        )
        encoder_layers = [
            LongformerEncoderLayer(
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                window=windows[i],
                dilation=dilations[i],
                causal=causal,
                dropout=dropout,
                attention_dropout=attention_dropout,
                layer_norm_epsilon=layer_norm_epsilon,
                max_global_tokens=max_global_tokens,
                gradient_checkpointing=gradient_checkpointing,
                dtype=dtype,
                name=f"encoder_layer_{i}",
            )
            for i in range(num_layers)
        ]
        pooler_dense = keras.layers.Dense(
            hidden_dim,
            activation="tanh",
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            dtype=dtype,
            name="pooler_dense",
        )

        # === Functional model ===
        inputs = {
            "token_ids": keras.Input(shape=(None,), dtype="int32", name="token_ids"),
            "padding_mask": keras.Input(shape=(None,), dtype="int32", name="padding_mask"),
            "global_mask": keras.Input(shape=(None,), dtype="int32", name="global_mask"),
        }
        padding_mask = ops.not_equal(inputs["padding_mask"], 0)
        global_mask = ops.not_equal(inputs["global_mask"], 0)
        x = embeddings(inputs["token_ids"])
        for layer in encoder_layers:
            x = layer(x, padding_mask=padding_mask, global_mask=global_mask)
        sequence_output = x
        pooled_output = pooler_dense(x[:, 0, :])
        super().__init__(
            inputs=inputs,
            outputs={"sequence_output": sequence_output, "pooled_output": pooled_output},
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
        self.causal = causal
        self.max_sequence_length = max_sequence_length
        self.type_vocab_size = type_vocab_size
        self.pad_token_id = pad_token_id
        self.dropout = float(dropout)
        self.attention_dropout = float(attention_dropout)
        self.layer_norm_epsilon = layer_norm_epsilon
        self.max_global_tokens = max_global_tokens
        self.gradient_checkpointing = gradient_checkpointing
        self.embeddings = embeddings
        self.token_embedding = embeddings.token_embedding
        self.encoder_layers = encoder_layers
        self.pooler_dense = pooler_dense
        # Built inside a `keras.RematScope`: the encoder layers recompute
        # themselves in training; the rest (embeddings, pooler, the graph's
        # ops: called with keywords or slices, which TensorFlow's
        # recompute_grad refuses in a graph) is kept.
        for operation in [*self._flatten_layers(include_self=False), *self.operations]:
            if not isinstance(operation, LongformerEncoderLayer):
                operation._remat_mode = None

    def rematerialized_call(self, layer_call, *args, **kwargs):
        # Under `keras.RematScope` each encoder layer recomputes itself
        # (`LongformerEncoderLayer.rematerialized_call`); the model as a
        # whole is not recomputed again around them.
        return layer_call

    def default_lora_layer_names(self):
        """The projections `enable_lora(rank)` adapts: query and value, local and global."""
        return ["query", "value", "query_global", "value_global"]

    def with_attention(self, window=None, dilation=None, max_sequence_length=None):
        """A copy for the next training phase: new attention, the same weights.

        The paper's staged schedule (section 4) trains in phases, each
        doubling the window and the sequence length. The copy has every
        weight of this backbone; a longer `max_sequence_length` tiles the
        learned position rows (`extend_position_embeddings`), so position
        `k` starts from the row of `k mod` the current length.

        Args:
            window: optional new window (int or one per layer); default: kept.
            dilation: optional new dilation (as the constructor takes it).
            max_sequence_length: optional int >= the current one.

        Returns:
            A new `LongformerBackbone`; this one is not changed.

        Raises:
            ValueError: a shorter `max_sequence_length` (its trained
                positions would be lost), or a window or dilation the
                constructor refuses, naming it.
        """
        from keras_longformer.models.position_embeddings import rebuilt

        length = self.max_sequence_length if max_sequence_length is None else max_sequence_length
        if isinstance(length, bool) or not isinstance(length, int) or length < self.max_sequence_length:
            raise ValueError(
                "`max_sequence_length` of a next phase must be an int >= the trained "
                f"{self.max_sequence_length} (shorter would drop trained positions). "
                f"Received: max_sequence_length={max_sequence_length!r}"
            )
        changes = {"window": window, "dilation": dilation, "max_sequence_length": length}
        return rebuilt(self, **{key: value for key, value in changes.items() if value is not None})

    @property
    def windows(self):
        """The one-sided window of each layer."""
        return _per_layer("window", self.window, self.num_layers)

    def get_config(self):
        # keras-hub's Backbone adds name, trainable and the dtype policy.
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
                "causal": self.causal,
                "max_sequence_length": self.max_sequence_length,
                "type_vocab_size": self.type_vocab_size,
                "pad_token_id": self.pad_token_id,
                "dropout": self.dropout,
                "attention_dropout": self.attention_dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "max_global_tokens": self.max_global_tokens,
                "gradient_checkpointing": self.gradient_checkpointing,
            }
        )
        return config
