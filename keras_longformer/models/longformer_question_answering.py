import keras

from keras_longformer.models.longformer_task import LongformerTask
from keras_longformer.models.longformer_task import check_backbone
from keras_longformer.models.longformer_task import freeze_unused_pooler
from keras_longformer.models.longformer_task import fine_tuning_optimizer


@keras.saving.register_keras_serializable(package="keras_longformer")
class LongformerQuestionAnswering(LongformerTask):
    """Extractive question answering (start/end logits) on a `LongformerBackbone`.

    Shapes: `B` batch, `T` sequence length.

    `Dense(2)(sequence_output)` split into start and end logits, Hugging
    Face's `LongformerForQuestionAnswering` head. Give the question tokens
    global attention, as the paper does.

    The backbone's pooler does not reach these outputs: it is frozen
    (`trainable=False`) so that training sees no weight without a gradient.

    Args:
        backbone: a `LongformerBackbone`.
        dtype: optional dtype policy of the head (defaults to the backbone's).
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: the backbone's dict (`token_ids`, `padding_mask`, `global_mask`).

    Returns:
        dict with `start_logits` `[B, T]` and `end_logits` `[B, T]`, float32.

    `compile()` defaults: AdamW(5e-5, weight decay 0.01, clip norm 1) and a
    sparse categorical cross-entropy on each of the two outputs; fit with
    `y={"start_logits": start_positions, "end_logits": end_positions}`.

    Example:

    >>> qa = LongformerQuestionAnswering(backbone)
    >>> qa.compile()
    >>> qa.fit(features, {"start_logits": starts, "end_logits": ends})

    Reference:
    - [Beltagy, Peters, Cohan, Longformer: The Long-Document Transformer,
      2020](https://arxiv.org/abs/2004.05150)
    """

    def __init__(self, backbone, dtype=None, **kwargs):
        check_backbone(backbone, "LongformerQuestionAnswering")
        freeze_unused_pooler(backbone)
        dtype = dtype or backbone.dtype_policy
        # === Layers ===
        output_dense = keras.layers.Dense(
            2,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            dtype=dtype,
            name="span_logits",
        )
        start = keras.layers.Activation(None, dtype="float32", name="start_logits")
        end = keras.layers.Activation(None, dtype="float32", name="end_logits")
        # === Functional model ===
        inputs = backbone.input
        logits = output_dense(backbone(inputs)["sequence_output"])
        outputs = {"start_logits": start(logits[..., 0]), "end_logits": end(logits[..., 1])}
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        # === Config ===
        self.backbone = backbone
        self.output_dense = output_dense

    def _default_compile(self):
        loss = {
            "start_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "end_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        }
        return fine_tuning_optimizer(), loss, None
