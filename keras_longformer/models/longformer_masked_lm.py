import keras
from keras_hub.models import MaskedLM

from keras_longformer.models.longformer_masked_lm_head import LongformerMaskedLMHead
from keras_longformer.models.longformer_masked_lm_preprocessor import LongformerMaskedLMPreprocessor
from keras_longformer.models.longformer_task import LongformerTask
from keras_longformer.models.longformer_task import check_backbone
from keras_longformer.models.longformer_task import check_preprocessor
from keras_longformer.models.longformer_task import fine_tuning_optimizer

MASK_POSITIONS = "mask_positions"


@keras.saving.register_keras_serializable(package="keras_longformer")
class LongformerMaskedLM(LongformerTask, MaskedLM):
    """Masked language model on a `LongformerBackbone`, decoder tied to the embedding.

    Shapes: `B` batch, `T` sequence length, `P` masked positions, `V`
    vocabulary size.

    Hugging Face's `LongformerForMaskedLM` head (dense, GELU, LayerNorm,
    then the transposed token embedding plus a bias). Given
    `mask_positions`, it runs only at those positions: `[B, P, V]` logits
    instead of `[B, T, V]` (at 4,096 tokens and 50,265 words the full
    logits are 0.8 GB per sequence); without, at every position, as
    Hugging Face does.

    With a `preprocessor`, `fit` and `evaluate` take raw strings, which the
    preprocessor masks anew at every batch (dynamic masking), and still
    take the feature dict.

    The backbone's pooler does not reach these outputs: it is frozen
    (`trainable=False`) so that training sees no weight without a gradient.

    Args:
        backbone: a `LongformerBackbone`.
        preprocessor: optional `LongformerMaskedLMPreprocessor`.
        dtype: optional dtype policy of the head (defaults to the backbone's).
        compile: bool, compile with the defaults below at construction.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: the backbone's dict (`token_ids`, `padding_mask`,
            `global_mask`), optionally with `mask_positions` `[B, P]` int.

    Returns:
        `[B, P, V]` float32 logits with `mask_positions`, else `[B, T, V]`.

    `compile()` defaults: AdamW(5e-5, weight decay 0.01, clip norm 1) and
    sparse categorical cross-entropy ignoring label -100 (full logits: give
    the original token at masked positions and -100 elsewhere, as Hugging
    Face; the preprocessor gives the tokens at `mask_positions` and weights).

    Example:

    >>> mlm = LongformerMaskedLM(backbone,
    ...     preprocessor=LongformerMaskedLMPreprocessor(tokenizer))
    >>> mlm.fit(["a long document ...", "another one"], epochs=3)
    >>> mlm.fit(masked_features, labels)  # or features, labels -100 where not masked

    Reference:
    - [Beltagy, Peters, Cohan, Longformer: The Long-Document Transformer,
      2020](https://arxiv.org/abs/2004.05150)
    """

    preprocessor_cls = LongformerMaskedLMPreprocessor

    def __init__(self, backbone, preprocessor=None, dtype=None, compile=True, **kwargs):
        check_backbone(backbone, "LongformerMaskedLM")
        check_preprocessor(preprocessor, self.preprocessor_cls, "LongformerMaskedLM")
        dtype = dtype or backbone.dtype_policy
        # === Layers ===
        lm_head = LongformerMaskedLMHead(
            backbone.token_embedding,
            layer_norm_epsilon=backbone.layer_norm_epsilon,
            dtype=dtype,
            name="lm_head",
        )
        as_float32 = keras.layers.Activation(None, dtype="float32", name="logits")
        # === Functional model ===
        # Logits at every position; `call` takes the `mask_positions` route
        # (not an input of the graph, so the exported model keeps the
        # backbone's three inputs).
        inputs = backbone.input
        outputs = as_float32(lm_head(backbone(inputs)["sequence_output"]))
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            backbone=backbone,
            preprocessor=preprocessor,
            compile=compile,
            **kwargs,
        )
        # === Config ===
        self.lm_head = lm_head
        self.as_float32 = as_float32
        self._finish_init()

    def call(self, inputs, training=None, mask=None):
        positions = inputs.get(MASK_POSITIONS) if isinstance(inputs, dict) else None
        features = {key: inputs[key] for key in self.backbone.input} if isinstance(inputs, dict) else inputs
        if positions is None:
            return super().call(features, training=training, mask=mask)
        sequence = self.backbone(features, training=training)["sequence_output"]
        return self.as_float32(self.lm_head(sequence, mask_positions=positions))

    def _per_token_width(self):
        return self.preprocessor.mask_selection_length

    def _default_compile(self):
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-100)
        return fine_tuning_optimizer(), loss, None

