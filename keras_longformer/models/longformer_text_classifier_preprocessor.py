import keras
from keras_hub.layers import MultiSegmentPacker
from keras_hub.models import TextClassifierPreprocessor
from keras_hub.src.utils.tensor_utils import preprocessing_function

from keras_longformer.models import preprocessing_utils as utils
from keras_longformer.models.longformer_backbone import LongformerBackbone
from keras_longformer.models.longformer_tokenizer import LongformerTokenizer


@keras.saving.register_keras_serializable(package="keras_longformer")
class LongformerTextClassifierPreprocessor(TextClassifierPreprocessor):
    """Raw text to the backbone's inputs for text classification.

    Shapes: `B` batch, `T` = the longest packed row of the batch (at most
    `sequence_length`; exactly `sequence_length` with
    `pad_to_sequence_length=True`).

    Tokenizes one text, or a pair of texts, and packs them as Hugging Face
    does for `LongformerForSequenceClassification`: `<s> text </s>`, or
    `<s> first </s></s> second </s>` for pairs, padded with `<pad>`. The
    `<s>` token gets global attention, as Hugging Face's default. Labels and
    sample weights pass through unchanged.

    Args:
        tokenizer: a `LongformerTokenizer`.
        sequence_length: int >= 2, the longest packed sequence.
        truncate: what to do with text that does not fit:
            `"round_robin"` (cut the longest segment first, Hugging Face's
            `truncation=True`), `"waterfall"` (keep earlier segments whole,
            cut the later ones), or `"error"` (refuse: a `ValueError` on an
            eager call, an `InvalidArgumentError` inside `tf.data`).
        pad_to_sequence_length: bool; by default a batch is padded only to
            its longest row.
        **kwargs: `keras_hub.models.Preprocessor` arguments.

    Call arguments:
        x: a string or a batch of strings; or a tuple `(first, second)` of
            two such batches for sentence pairs (pass it as `x=(first,
            second)`: keras-hub reads a bare 2-tuple as `(x, y)`).
        y: optional labels, returned unchanged.
        sample_weight: optional weights, returned unchanged.

    Returns:
        `x` a dict with `token_ids` `[B, T]` int32, `padding_mask` and
        `global_mask` `[B, T]` bool; with `y` and `sample_weight` when
        given, packed as `keras.utils.pack_x_y_sample_weight` does.

    Example:

    >>> tokenizer = LongformerTokenizer.from_huggingface("longformer-base-4096/")
    >>> preprocessor = LongformerTextClassifierPreprocessor(tokenizer)
    >>> preprocessor(["A long document ...", "Another one"])["token_ids"].shape
    TensorShape([2, 7])

    Reference:
    - [Beltagy, Peters, Cohan, Longformer: The Long-Document Transformer,
      2020](https://arxiv.org/abs/2004.05150)
    """

    backbone_cls = LongformerBackbone
    tokenizer_cls = LongformerTokenizer

    def __init__(
        self,
        tokenizer,
        sequence_length=4096,
        truncate="round_robin",
        pad_to_sequence_length=False,
        **kwargs,
    ):
        utils.check_preprocessor_arguments(
            sequence_length, truncate, ("round_robin", "waterfall", "error"), pad_to_sequence_length
        )
        super().__init__(tokenizer, sequence_length=sequence_length, truncate=truncate, **kwargs)
        self.pad_to_sequence_length = pad_to_sequence_length

    def build(self, input_shape):
        # RoBERTa doubles the separator between segments; the packer runs in
        # TensorFlow on every path so that the steps after it are one code.
        self.packer = MultiSegmentPacker(
            start_value=self.tokenizer.start_token_id,
            end_value=self.tokenizer.end_token_id,
            sep_value=[self.tokenizer.end_token_id] * 2,
            pad_value=self.tokenizer.pad_token_id,
            truncate="round_robin" if self.truncate == "error" else self.truncate,
            sequence_length=self.sequence_length,
            _allow_python_workflow=False,
        )
        self.built = True

    @preprocessing_function
    def call(self, x, y=None, sample_weight=None):
        texts = x if isinstance(x, tuple) else (x,)
        segments = utils.tokenize_segments(self.tokenizer, texts)
        # `<s>` and `</s>` around everything, `</s></s>` between segments.
        num_special_tokens = 2 * len(segments)
        if self.truncate == "error":
            utils.refuse_longer_than(segments, num_special_tokens, self.sequence_length)
        token_ids, _ = self.packer(tuple(segments))
        lengths = utils.packed_lengths(segments, num_special_tokens, self.sequence_length)
        padding_mask = utils.padding_mask_from_lengths(lengths, token_ids)
        x = utils.features(
            token_ids,
            padding_mask,
            utils.first_token_global_mask(token_ids),
            self.pad_to_sequence_length,
        )
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

    def get_config(self):
        config = super().get_config()
        config["pad_to_sequence_length"] = self.pad_to_sequence_length
        return config

