import keras
from keras_hub.models import Task

from keras_longformer.models.longformer_question_answerer_preprocessor import (
    LongformerQuestionAnswererPreprocessor,
)
from keras_longformer.models.longformer_task import LongformerTask
from keras_longformer.models.longformer_task import check_backbone
from keras_longformer.models.longformer_task import check_preprocessor
from keras_longformer.models.longformer_task import fine_tuning_optimizer


@keras.saving.register_keras_serializable(package="keras_longformer")
class LongformerQuestionAnswerer(LongformerTask, Task):
    """Extractive question answering on a `LongformerBackbone` (formerly `LongformerQuestionAnswering`).

    Shapes: `B` batch, `T` sequence length.

    `Dense(2)(sequence_output)` split into start and end logits, Hugging
    Face's `LongformerForQuestionAnswering` head. Give the question tokens
    global attention, as the paper does (the preprocessor does).

    With a `preprocessor`, `fit`, `evaluate` and `predict` take
    `(questions, contexts)` pairs of raw strings and still take the feature
    dict; `predict` then pads the logits of every batch to the
    preprocessor's `sequence_length` with -1e9.

    The backbone's pooler does not reach these outputs: it is frozen
    (`trainable=False`) so that training sees no weight without a gradient.

    Args:
        backbone: a `LongformerBackbone`.
        preprocessor: optional `LongformerQuestionAnswererPreprocessor`.
        dtype: optional dtype policy of the head (defaults to the backbone's).
        compile: bool, compile with the defaults below at construction.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: the backbone's dict (`token_ids`, `padding_mask`, `global_mask`).

    Returns:
        dict with `start_logits` `[B, T]` and `end_logits` `[B, T]`, float32.

    `compile()` defaults: AdamW(5e-5, weight decay 0.01, clip norm 1) and a
    sparse categorical cross-entropy on each of the two outputs; fit with
    `y={"start_logits": start_positions, "end_logits": end_positions}`.

    Example:

    >>> qa = LongformerQuestionAnswerer(backbone,
    ...     preprocessor=LongformerQuestionAnswererPreprocessor(tokenizer))
    >>> qa.fit(features, {"start_logits": starts, "end_logits": ends})
    >>> qa.predict((["Who wrote it?"], ["A long report ..."]))["start_logits"]

    Reference:
    - [Beltagy, Peters, Cohan, Longformer: The Long-Document Transformer,
      2020](https://arxiv.org/abs/2004.05150)
    """

    preprocessor_cls = LongformerQuestionAnswererPreprocessor

    def __init__(self, backbone, preprocessor=None, dtype=None, compile=True, **kwargs):
        check_backbone(backbone, "LongformerQuestionAnswerer")
        check_preprocessor(preprocessor, self.preprocessor_cls, "LongformerQuestionAnswerer")
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
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            backbone=backbone,
            preprocessor=preprocessor,
            compile=compile,
            **kwargs,
        )
        # === Config ===
        self.output_dense = output_dense
        self._finish_init()

    def _per_token_width(self):
        return self.preprocessor.sequence_length

    def _default_compile(self):
        loss = {
            "start_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "end_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        }
        return fine_tuning_optimizer(), loss, None


# The name before keras-hub's naming, kept so that code and `.keras` files
# that use it still work.
LongformerQuestionAnswering = LongformerQuestionAnswerer
keras.saving.get_custom_objects()["keras_longformer>LongformerQuestionAnswering"] = (
    LongformerQuestionAnswerer
)
