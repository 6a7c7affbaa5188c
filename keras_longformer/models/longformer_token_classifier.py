import keras

from keras_longformer.arguments import check_int
from keras_longformer.arguments import check_rate
from keras_longformer.models.longformer_task import LongformerTask
from keras_longformer.models.longformer_task import check_backbone
from keras_longformer.models.longformer_task import freeze_unused_pooler
from keras_longformer.models.longformer_task import fine_tuning_optimizer


@keras.saving.register_keras_serializable(package="keras_longformer")
class LongformerTokenClassifier(LongformerTask):
    """Token classification (tagging) on a `LongformerBackbone`.

    Shapes: `B` batch, `T` sequence length, `C` = `num_classes`.

    `Dense(C)(Dropout(sequence_output))`, Hugging Face's
    `LongformerForTokenClassification` head.

    The backbone's pooler does not reach these outputs: it is frozen
    (`trainable=False`) so that training sees no weight without a gradient.

    Args:
        backbone: a `LongformerBackbone`.
        num_classes: int >= 1.
        dropout: float in `[0, 1)`, dropout before the output layer.
        dtype: optional dtype policy of the head (defaults to the backbone's).
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: the backbone's dict (`token_ids`, `padding_mask`, `global_mask`).

    Returns:
        `[B, T, C]` float32 logits.

    `compile()` defaults: AdamW(5e-5, weight decay 0.01, clip norm 1) and
    sparse categorical cross-entropy that ignores label -100 (use it for
    padding and sub-word continuations, as Hugging Face does).

    Example:

    >>> tagger = LongformerTokenClassifier(backbone, num_classes=9)
    >>> tagger.compile()
    >>> tagger.fit(features, tags)  # tags [B, T], -100 where ignored

    Reference:
    - [Beltagy, Peters, Cohan, Longformer: The Long-Document Transformer,
      2020](https://arxiv.org/abs/2004.05150)
    """

    def __init__(self, backbone, num_classes, dropout=0.1, dtype=None, **kwargs):
        check_backbone(backbone, "LongformerTokenClassifier")
        check_int("num_classes", num_classes, 1)
        check_rate("dropout", dropout)
        freeze_unused_pooler(backbone)
        dtype = dtype or backbone.dtype_policy
        # === Layers ===
        output_dropout = keras.layers.Dropout(dropout, dtype=dtype, name="output_dropout")
        output_dense = keras.layers.Dense(
            num_classes,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            dtype=dtype,
            name="output_dense",
        )
        # Float32 logits whatever the dtype policy; names the model's output.
        as_float32 = keras.layers.Activation(None, dtype="float32", name="logits")
        # === Functional model ===
        inputs = backbone.input
        sequence = backbone(inputs)["sequence_output"]
        outputs = as_float32(output_dense(output_dropout(sequence)))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        # === Config ===
        self.backbone = backbone
        self.num_classes = num_classes
        self.dropout = float(dropout)
        self.output_dense = output_dense

    def _task_config(self):
        return {"num_classes": self.num_classes, "dropout": self.dropout}

    def _default_compile(self):
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-100)
        return fine_tuning_optimizer(), loss, None
