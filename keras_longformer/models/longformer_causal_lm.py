import math

import keras
from keras import ops

from keras_longformer.models.longformer_masked_lm import LongformerTiedLogits
from keras_longformer.models.longformer_task import LongformerTask
from keras_longformer.models.longformer_task import check_backbone
from keras_longformer.models.longformer_task import freeze_unused_pooler


@keras.saving.register_keras_serializable(package="keras_longformer")
class LongformerCausalLM(LongformerTask):
    """Causal (left-to-right) language model on a causal `LongformerBackbone`.

    Shapes: `B` batch, `T` sequence length, `V` vocabulary size.

    Logits of the next token at every position: `sequence_output @ E^T + b`
    with the decoder tied to the token embedding `E`. The backbone must be
    built with `causal=True`, so no position sees a later one; the paper's
    character-level model uses windows growing per layer and dilation on
    some heads of the upper layers, which the backbone takes as
    `window=[...]` and `dilation=[...]`.

    The backbone's pooler does not reach these outputs: it is frozen
    (`trainable=False`) so that training sees no weight without a gradient.

    Args:
        backbone: a `LongformerBackbone` with `causal=True`.
        dtype: optional dtype policy of the head (defaults to the backbone's).
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: the backbone's dict (`token_ids`, `padding_mask`, `global_mask`).

    Returns:
        `[B, T, V]` float32 logits; position `t` predicts token `t + 1`.

    `compile()` defaults: AdamW(1e-3, weight decay 0.01, clip norm 1) (a
    from-scratch learning rate) and sparse categorical cross-entropy
    ignoring label -100; fit with `y = token_ids` shifted left by one.

    Example:

    >>> backbone = LongformerBackbone(
    ...     vocabulary_size=256, num_layers=4, num_heads=4, hidden_dim=128,
    ...     intermediate_dim=512, window=[16, 32, 64, 128],
    ...     dilation=[1, 1, [1, 1, 2, 2], [1, 1, 2, 2]], causal=True,
    ...     pad_token_id=0)
    >>> lm = LongformerCausalLM(backbone)
    >>> lm.compile()
    >>> lm.fit(features, next_tokens)

    Reference:
    - [Beltagy, Peters, Cohan, Longformer: The Long-Document Transformer,
      2020](https://arxiv.org/abs/2004.05150)
    """

    def __init__(self, backbone, dtype=None, **kwargs):
        check_backbone(backbone, "LongformerCausalLM")
        if not backbone.causal:
            raise ValueError(
                "LongformerCausalLM needs a backbone built with causal=True. "
                f"Received: backbone.causal={backbone.causal!r}"
            )
        freeze_unused_pooler(backbone)
        dtype = dtype or backbone.dtype_policy
        # === Layers ===
        decoder = LongformerTiedLogits(backbone.token_embedding, dtype=dtype, name="decoder")
        as_float32 = keras.layers.Activation(None, dtype="float32", name="logits")
        # === Functional model ===
        inputs = backbone.input
        outputs = as_float32(decoder(backbone(inputs)["sequence_output"]))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        # === Config ===
        self.backbone = backbone
        self.decoder = decoder

    def _default_compile(self):
        optimizer = keras.optimizers.AdamW(
            learning_rate=1e-3, weight_decay=0.01, global_clipnorm=1.0
        )
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-100)
        return optimizer, loss, None


def bits_per_token(logits, targets, mask=None):
    """Mean negative log2-likelihood of `targets` `[B, T]` under `logits` `[B, T, V]`.

    `mask` `[B, T]` (bool or 0/1) selects the positions that count.
    Returns a float32 scalar tensor.
    """
    logits = ops.cast(logits, "float32")
    log_probs = ops.log_softmax(logits, axis=-1)
    picked = ops.take_along_axis(log_probs, ops.cast(targets, "int32")[..., None], axis=-1)[..., 0]
    if mask is None:
        mask = ops.ones_like(picked)
    mask = ops.cast(ops.not_equal(mask, 0), "float32")
    nats = -ops.sum(picked * mask) / ops.maximum(ops.sum(mask), 1.0)
    return nats / math.log(2.0)
