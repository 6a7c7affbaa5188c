import keras
from keras_hub.models import TextClassifier

from keras_longformer.arguments import check_int
from keras_longformer.arguments import check_rate
from keras_longformer.models.longformer_task import LongformerTask
from keras_longformer.models.longformer_task import check_backbone
from keras_longformer.models.longformer_task import check_preprocessor
from keras_longformer.models.longformer_task import fine_tuning_optimizer
from keras_longformer.models.longformer_text_classifier_preprocessor import (
    LongformerTextClassifierPreprocessor,
)


@keras.saving.register_keras_serializable(package="keras_longformer")
class LongformerTextClassifier(LongformerTask, TextClassifier):
    """Text classification on a `LongformerBackbone` (formerly `LongformerClassifier`).

    Shapes: `B` batch, `T` sequence length, `C` = `num_classes`.

    `Dense(C)(Dropout(pooled_output))`, where `pooled_output` is the
    backbone's dense + tanh on the first token: the same network as Hugging
    Face's `LongformerForSequenceClassification` head (its `classifier.dense`
    is the pooler here). Give the first token global attention
    (`global_mask[:, 0] = 1`), as Hugging Face does by default, so that it
    sees the whole document.

    With a `preprocessor`, `fit`, `evaluate` and `predict` take raw strings
    (or pairs, or a `tf.data.Dataset` of them) and still take the feature
    dict; calling the model directly always takes the feature dict.

    Args:
        backbone: a `LongformerBackbone`.
        num_classes: int >= 1.
        preprocessor: optional `LongformerTextClassifierPreprocessor`.
        dropout: float in `[0, 1)`, dropout before the output layer.
        activation: optional activation of the output (`None`: logits).
        dtype: optional dtype policy of the head (defaults to the backbone's).
        compile: bool, compile with the defaults below at construction.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: the backbone's dict (`token_ids`, `padding_mask`, `global_mask`).

    Returns:
        `[B, C]` float32 logits (or activations).

    `compile()` defaults: AdamW(5e-5, weight decay 0.01, clip norm 1),
    sparse categorical cross-entropy, accuracy.

    Example:

    >>> classifier = LongformerTextClassifier(backbone, num_classes=2,
    ...     preprocessor=LongformerTextClassifierPreprocessor(tokenizer))
    >>> classifier.fit(["a long document ...", "another one"], [0, 1], epochs=3)
    >>> classifier.predict(["a third document"])

    Reference:
    - [Beltagy, Peters, Cohan, Longformer: The Long-Document Transformer,
      2020](https://arxiv.org/abs/2004.05150)
    """

    reads_pooled_output = True

    preprocessor_cls = LongformerTextClassifierPreprocessor

    def __init__(
        self,
        backbone,
        num_classes,
        preprocessor=None,
        dropout=0.1,
        activation=None,
        dtype=None,
        compile=True,
        **kwargs,
    ):
        check_backbone(backbone, "LongformerTextClassifier")
        check_preprocessor(preprocessor, self.preprocessor_cls, "LongformerTextClassifier")
        check_int("num_classes", num_classes, 1)
        check_rate("dropout", dropout)
        if backbone.trainable:
            # This head reads `pooled_output`: its pooler must train, also on a
            # backbone taken from a task that froze the (unused) pooler, such
            # as a masked LM before fine-tuning.
            backbone.pooler_dense.trainable = True
        dtype = dtype or backbone.dtype_policy
        # === Layers ===
        output_dropout = keras.layers.Dropout(dropout, dtype=dtype, name="output_dropout")
        output_dense = keras.layers.Dense(
            num_classes,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            dtype=dtype,
            name="output_dense",
        )
        # The last layer names the model's output (and the ONNX output).
        output_activation = keras.layers.Activation(
            activation,
            dtype="float32",
            name="logits" if activation is None else "predictions",
        )
        # === Functional model ===
        inputs = backbone.input
        pooled = backbone(inputs)["pooled_output"]
        outputs = output_activation(output_dense(output_dropout(pooled)))
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
        self.activation = (
            keras.activations.serialize(keras.activations.get(activation)) if activation else None
        )
        self.output_dense = output_dense
        self._finish_init()

    def _task_config(self):
        return {
            "num_classes": self.num_classes,
            "dropout": self.dropout,
            "activation": self.activation,
        }

    def _default_compile(self):
        loss = keras.losses.SparseCategoricalCrossentropy(
            from_logits=self.activation is None
        )
        return fine_tuning_optimizer(), loss, [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]


# The name before keras-hub's naming, kept so that code and `.keras` files
# that use it still work.
LongformerClassifier = LongformerTextClassifier
keras.saving.get_custom_objects()["keras_longformer>LongformerClassifier"] = LongformerTextClassifier
