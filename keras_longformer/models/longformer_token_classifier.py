import keras
from keras_hub.models import Task

from keras_longformer.arguments import check_int
from keras_longformer.arguments import check_rate
from keras_longformer.models.longformer_task import LongformerTask
from keras_longformer.models.longformer_task import check_backbone
from keras_longformer.models.longformer_task import check_preprocessor
from keras_longformer.models.longformer_task import fine_tuning_optimizer
from keras_longformer.models.longformer_token_classifier_preprocessor import (
    LongformerTokenClassifierPreprocessor,
)


@keras.saving.register_keras_serializable(package="keras_longformer")
class LongformerTokenClassifier(LongformerTask, Task):
    """Token classification (tagging) on a `LongformerBackbone`.

    Shapes: `B` batch, `T` sequence length, `C` = `num_classes`.

    `Dense(C)(Dropout(sequence_output))`, Hugging Face's
    `LongformerForTokenClassification` head.

    With a `preprocessor`, `fit`, `evaluate` and `predict` take words (a
    list of words per example, or a `tf.RaggedTensor` of them) and word
    labels, and still take the feature dict; `predict` then pads the logits
    of every batch to the preprocessor's `sequence_length` with -1e9, and
    `preprocessor.word_ids(words)` maps each token back to its word.

    The backbone's pooler does not reach these outputs: it is frozen
    (`trainable=False`) so that training sees no weight without a gradient.

    Args:
        backbone: a `LongformerBackbone`.
        num_classes: int >= 1.
        preprocessor: optional `LongformerTokenClassifierPreprocessor`.
        dropout: float in `[0, 1)`, dropout before the output layer.
        dtype: optional dtype policy of the head (defaults to the backbone's).
        compile: bool, compile with the defaults below at construction.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: the backbone's dict (`token_ids`, `padding_mask`, `global_mask`).

    Returns:
        `[B, T, C]` float32 logits.

    `compile()` defaults: AdamW(5e-5, weight decay 0.01, clip norm 1) and
    sparse categorical cross-entropy that ignores label -100 (use it for
    padding and sub-word continuations, as Hugging Face does).

    Example:

    >>> tagger = LongformerTokenClassifier(backbone, num_classes=9,
    ...     preprocessor=LongformerTokenClassifierPreprocessor(tokenizer))
    >>> words = tf.ragged.constant([["John", "lives", "in", "Paris"]])
    >>> tagger.fit(words, tf.ragged.constant([[1, 0, 0, 2]]))
    >>> tagger.fit(features, tags)  # or the features, tags [B, T] with -100

    Reference:
    - [Beltagy, Peters, Cohan, Longformer: The Long-Document Transformer,
      2020](https://arxiv.org/abs/2004.05150)
    """

    preprocessor_cls = LongformerTokenClassifierPreprocessor

    def __init__(
        self,
        backbone,
        num_classes,
        preprocessor=None,
        dropout=0.1,
        dtype=None,
        compile=True,
        **kwargs,
    ):
        check_backbone(backbone, "LongformerTokenClassifier")
        check_preprocessor(preprocessor, self.preprocessor_cls, "LongformerTokenClassifier")
        check_int("num_classes", num_classes, 1)
        check_rate("dropout", dropout)
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
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            backbone=backbone,
            preprocessor=preprocessor,
            compile=compile,
            **kwargs,
        )
        # === Config ===
        self.num_classes = num_classes
        self.dropout = float(dropout)
        self.output_dense = output_dense
        self._finish_init()

    def _per_token_width(self):
        return self.preprocessor.sequence_length

    def _task_config(self):
        return {"num_classes": self.num_classes, "dropout": self.dropout}

    def _default_compile(self):
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-100)
        return fine_tuning_optimizer(), loss, None
