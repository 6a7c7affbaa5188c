import math

import keras
import tensorflow as tf
from keras_hub.layers import MaskedLMMaskGenerator
from keras_hub.layers import MultiSegmentPacker
from keras_hub.models import MaskedLMPreprocessor
from keras_hub.src.utils.tensor_utils import preprocessing_function

from keras_longformer.arguments import check_int
from keras_longformer.models import preprocessing_utils as utils
from keras_longformer.models.longformer_backbone import LongformerBackbone
from keras_longformer.models.longformer_tokenizer import LongformerTokenizer


@keras.saving.register_keras_serializable(package="keras_longformer")
class LongformerMaskedLMPreprocessor(MaskedLMPreprocessor):
    """Raw text to masked-language-model inputs, masked anew at every call.

    Shapes: `B` batch, `T` = the longest packed row of the batch, `P` = the
    most masked positions of a row in the batch (at most
    `mask_selection_length`; `sequence_length` and `mask_selection_length`
    exactly with `pad_to_sequence_length=True`).

    Packs text (or pairs) as `<s> text </s>` (`<s> a </s></s> b </s>`),
    then keras-hub's `MaskedLMMaskGenerator` picks `mask_selection_rate`
    of the real, non-special tokens: of those, `mask_token_rate` become
    `<mask>`, `random_token_rate` a random token, the rest stay. Every call
    draws a new selection (dynamic masking, as RoBERTa and Longformer were
    pretrained), so each epoch of a `tf.data` pipeline masks differently.
    `mask_positions` tells the model where to compute logits: `[B, P, V]`,
    not `[B, T, V]` (0.8 GB per 4,096-token sequence of a 50,265-token
    vocabulary). No token gets global attention, as in Hugging Face's
    `LongformerForMaskedLM`.

    Args:
        tokenizer: a `LongformerTokenizer`.
        sequence_length: int >= 2, the longest packed sequence.
        truncate: `"round_robin"`, `"waterfall"` (see
            `LongformerTextClassifierPreprocessor`) or `"error"`.
        mask_selection_rate: float, share of tokens selected.
        mask_selection_length: int >= 1 or None, the most positions
            selected per row; None: `ceil(mask_selection_rate *
            sequence_length)`, so that no selection is ever dropped.
        mask_token_rate: float, share of selected tokens that become `<mask>`.
        random_token_rate: float, share that become a random token.
        pad_to_sequence_length: bool; by default a batch is padded only to
            its longest row and its most masked positions.
        **kwargs: `keras_hub.models.Preprocessor` arguments.

    Call arguments:
        x: a string, a batch of strings, or a tuple of two batches (pairs,
            passed as `x=(first, second)`).
        y, sample_weight: ignored (the labels are the masked tokens).

    Returns:
        `(x, y, sample_weight)`: `x` a dict with `token_ids` `[B, T]` int32
        (masked), `padding_mask` and `global_mask` `[B, T]` bool and
        `mask_positions` `[B, P]` int32; `y` the original tokens at those
        positions `[B, P]`; `sample_weight` `[B, P]`, 1 where a position
        was selected and 0 on padding of `P`.

    Example:

    >>> preprocessor = LongformerMaskedLMPreprocessor(tokenizer, sequence_length=4096)
    >>> x, y, weights = preprocessor(["A long document ...", "Another one"])
    >>> x["mask_positions"].shape, y.shape  # [B, P]

    Reference:
    - [Liu et al., RoBERTa: A Robustly Optimized BERT Pretraining Approach,
      2019](https://arxiv.org/abs/1907.11692)
    """

    backbone_cls = LongformerBackbone
    tokenizer_cls = LongformerTokenizer

    def __init__(
        self,
        tokenizer,
        sequence_length=4096,
        truncate="round_robin",
        mask_selection_rate=0.15,
        mask_selection_length=None,
        mask_token_rate=0.8,
        random_token_rate=0.1,
        pad_to_sequence_length=False,
        **kwargs,
    ):
        utils.check_preprocessor_arguments(
            sequence_length, truncate, ("round_robin", "waterfall", "error"), pad_to_sequence_length
        )
        for name, rate in (
            ("mask_selection_rate", mask_selection_rate),
            ("mask_token_rate", mask_token_rate),
            ("random_token_rate", random_token_rate),
        ):
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
                raise ValueError(f"`{name}` must be a float in [0, 1]. Received: {name}={rate!r}")
        if mask_token_rate + random_token_rate > 1:
            raise ValueError(
                "`mask_token_rate + random_token_rate` must be at most 1. Received: "
                f"mask_token_rate={mask_token_rate}, random_token_rate={random_token_rate}"
            )
        if mask_selection_length is None:
            mask_selection_length = max(1, math.ceil(mask_selection_rate * sequence_length))
        check_int("mask_selection_length", mask_selection_length, 1)
        super().__init__(
            tokenizer,
            sequence_length=sequence_length,
            truncate=truncate,
            mask_selection_rate=mask_selection_rate,
            mask_selection_length=mask_selection_length,
            mask_token_rate=mask_token_rate,
            random_token_rate=random_token_rate,
            **kwargs,
        )
        self.pad_to_sequence_length = pad_to_sequence_length

    def build(self, input_shape):
        tokenizer = self.tokenizer
        self.packer = MultiSegmentPacker(
            start_value=tokenizer.start_token_id,
            end_value=tokenizer.end_token_id,
            sep_value=[tokenizer.end_token_id] * 2,
            pad_value=tokenizer.pad_token_id,
            truncate="round_robin" if self.truncate == "error" else self.truncate,
            sequence_length=self.sequence_length,
            _allow_python_workflow=False,
        )
        self.masker = MaskedLMMaskGenerator(
            mask_selection_rate=self.mask_selection_rate,
            mask_selection_length=self.mask_selection_length,
            mask_token_rate=self.mask_token_rate,
            random_token_rate=self.random_token_rate,
            vocabulary_size=tokenizer.vocabulary_size(),
            mask_token_id=tokenizer.mask_token_id,
            unselectable_token_ids=tokenizer.special_token_ids,
            _allow_python_workflow=False,
        )
        self.built = True

    @preprocessing_function
    def call(self, x, y=None, sample_weight=None):
        texts = x if isinstance(x, tuple) else (x,)
        segments = utils.tokenize_segments(self.tokenizer, texts)
        num_special_tokens = 2 * len(segments)
        if self.truncate == "error":
            utils.refuse_longer_than(segments, num_special_tokens, self.sequence_length)
        token_ids, _ = self.packer(tuple(segments))
        lengths = utils.packed_lengths(segments, num_special_tokens, self.sequence_length)
        padding_mask = utils.padding_mask_from_lengths(lengths, token_ids)
        masked = self.masker(token_ids)
        mask_positions, mask_ids, mask_weights = (
            # int32 like the other ids (JAX, without x64, would truncate int64 with a warning).
            tf.cast(masked["mask_positions"], "int32"),
            masked["mask_ids"],
            masked["mask_weights"],
        )
        if not self.pad_to_sequence_length:
            # Fewer logits: only as many positions as the row masking most.
            mask_positions, mask_ids, mask_weights = utils.trim_to_longest(
                tf.not_equal(mask_weights, 0), mask_positions, mask_ids, mask_weights
            )
        x = utils.features(
            masked["token_ids"],
            padding_mask,
            utils.no_global_mask(token_ids),
            self.pad_to_sequence_length,
            mask_positions=mask_positions,
        )
        return keras.utils.pack_x_y_sample_weight(x, mask_ids, mask_weights)

    def get_config(self):
        config = super().get_config()
        config["pad_to_sequence_length"] = self.pad_to_sequence_length
        return config
