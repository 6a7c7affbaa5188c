import keras
from keras_hub.layers import MultiSegmentPacker
from keras_hub.models import Preprocessor
from keras_hub.src.utils.tensor_utils import preprocessing_function

from keras_longformer.models import preprocessing_utils as utils
from keras_longformer.models.longformer_backbone import LongformerBackbone
from keras_longformer.models.longformer_tokenizer import LongformerTokenizer


@keras.saving.register_keras_serializable(package="keras_longformer")
class LongformerQuestionAnswererPreprocessor(Preprocessor):
    """(question, context) pairs to the backbone's inputs for extractive QA.

    Shapes: `B` batch, `T` = the longest packed row of the batch (at most
    `sequence_length`; exactly `sequence_length` with
    `pad_to_sequence_length=True`).

    Packs each pair as Hugging Face does for
    `LongformerForQuestionAnswering`: `<s> question </s></s> context </s>`,
    padded with `<pad>`, and gives global attention to `<s>` and every
    question token, i.e. to every position before the first `</s>`, which is
    exactly the mask Hugging Face computes when it is given none. Start and
    end positions (`y`) pass through unchanged: they index the packed
    tokens.

    Args:
        tokenizer: a `LongformerTokenizer`.
        sequence_length: int >= 2, the longest packed sequence.
        truncate: what to do with pairs that do not fit: `"waterfall"`
            (keep the question whole and cut the context: Hugging Face's
            `truncation="only_second"`), `"round_robin"` (cut the longer of
            the two first: `truncation="longest_first"`), or `"error"`
            (refuse: a `ValueError` on an eager call, an
            `InvalidArgumentError` inside `tf.data`).
        pad_to_sequence_length: bool; by default a batch is padded only to
            its longest row.
        **kwargs: `keras_hub.models.Preprocessor` arguments.

    Call arguments:
        x: a tuple `(question, context)`, each a string or a batch of
            strings. A bare `(question, context)` tuple is read as `x`
            (a tuple whose first member is itself a tuple as `(x, y, ...)`).
            Map it over a `tf.data.Dataset` of `((question, context), y)`
            elements, or call it on batches of pairs: `tf.data` would spread
            a bare `(question, context)` element over `x` and `y`.
        y: optional labels, e.g. `{"start_logits": starts, "end_logits":
            ends}`, returned unchanged.
        sample_weight: optional weights, returned unchanged.

    Returns:
        `x` a dict with `token_ids` `[B, T]` int32, `padding_mask` and
        `global_mask` `[B, T]` bool; with `y` and `sample_weight` when
        given.

    Example:

    >>> preprocessor = LongformerQuestionAnswererPreprocessor(tokenizer)
    >>> features = preprocessor((["Who wrote it?"], ["A long report ..."]))
    >>> features["global_mask"][0, :6]  # <s> Who wrote it ? </s>
    [True, True, True, True, True, False]

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
        truncate="waterfall",
        pad_to_sequence_length=False,
        **kwargs,
    ):
        utils.check_preprocessor_arguments(
            sequence_length, truncate, ("waterfall", "round_robin", "error"), pad_to_sequence_length
        )
        super().__init__(**kwargs)
        self.tokenizer = tokenizer
        self.packer = None
        self.sequence_length = sequence_length
        self.truncate = truncate
        self.pad_to_sequence_length = pad_to_sequence_length

    def __call__(self, *args, **kwargs):
        # keras-hub reads a lone 2-tuple argument as `(x, y)`; here a
        # `(question, context)` pair is the input itself, so only a tuple
        # whose first member is a tuple (the pair) is unpacked.
        pair = len(args) == 1 and type(args[0]) is tuple and len(args[0]) == 2
        if pair and not isinstance(args[0][0], tuple):
            return super().__call__(x=args[0], **kwargs)
        return super().__call__(*args, **kwargs)

    def build(self, input_shape):
        self.packer = MultiSegmentPacker(
            start_value=self.tokenizer.start_token_id,
            end_value=self.tokenizer.end_token_id,
            sep_value=[self.tokenizer.end_token_id] * 2,
            pad_value=self.tokenizer.pad_token_id,
            truncate="waterfall" if self.truncate == "error" else self.truncate,
            sequence_length=self.sequence_length,
            _allow_python_workflow=False,
        )
        self.built = True

    @preprocessing_function
    def call(self, x, y=None, sample_weight=None):
        if not isinstance(x, tuple) or len(x) != 2:
            raise ValueError(
                "`x` must be a (question, context) pair of strings or of batches "
                f"of strings. Received: x={x!r}"
            )
        segments = utils.tokenize_segments(self.tokenizer, x)
        num_special_tokens = 4  # <s> q </s></s> c </s>
        if self.truncate == "error":
            utils.refuse_longer_than(segments, num_special_tokens, self.sequence_length)
        token_ids, _ = self.packer(tuple(segments))
        lengths = utils.packed_lengths(segments, num_special_tokens, self.sequence_length)
        padding_mask = utils.padding_mask_from_lengths(lengths, token_ids)
        global_mask = utils.question_global_mask(
            token_ids, padding_mask, self.tokenizer.end_token_id
        )
        x = utils.features(token_ids, padding_mask, global_mask, self.pad_to_sequence_length)
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sequence_length": self.sequence_length,
                "truncate": self.truncate,
                "pad_to_sequence_length": self.pad_to_sequence_length,
            }
        )
        return config

    @property
    def sequence_length(self):
        """The longest packed sequence."""
        return self._sequence_length

    @sequence_length.setter
    def sequence_length(self, value):
        self._sequence_length = value
        if self.packer is not None:
            self.packer.sequence_length = value
