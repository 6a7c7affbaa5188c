import keras
import tensorflow as tf
from keras_hub.layers import StartEndPacker
from keras_hub.models import Preprocessor
from keras_hub.src.utils.tensor_utils import preprocessing_function

from keras_longformer.arguments import check_bool
from keras_longformer.models import preprocessing_utils as utils
from keras_longformer.models.longformer_backbone import LongformerBackbone
from keras_longformer.models.longformer_tokenizer import LongformerTokenizer


@keras.saving.register_keras_serializable(package="keras_longformer")
class LongformerTokenClassifierPreprocessor(Preprocessor):
    """Words and word labels to the backbone's inputs and token labels.

    Shapes: `B` batch, `W` words of a row (ragged), `T` = the longest
    packed row of the batch (at most `sequence_length`; exactly
    `sequence_length` with `pad_to_sequence_length=True`).

    Tagging (named entities, parts of speech) labels words, while the model
    sees sub-word tokens. Each word is tokenized as Hugging Face does for
    `is_split_into_words=True` (as if preceded by a space, so every word
    reads as a word start), the tokens are packed as `<s> ... </s>`, and
    each word's label goes to its first token; the other tokens of a word,
    `<s>`, `</s>` and padding get -100, which the task's loss ignores
    (`label_all_subwords=True` labels every token of a word instead). No
    token gets global attention, as in Hugging Face's
    `LongformerForTokenClassification`.

    Args:
        tokenizer: a `LongformerTokenizer`.
        sequence_length: int >= 2, the longest packed sequence.
        truncate: `"end"` (drop the tokens past `sequence_length`, and the
            labels with them) or `"error"` (refuse: a `ValueError` on an
            eager call, an `InvalidArgumentError` inside `tf.data`).
        label_all_subwords: bool, label every token of a word, not only
            its first.
        pad_to_sequence_length: bool; by default a batch is padded only to
            its longest row.
        **kwargs: `keras_hub.models.Preprocessor` arguments.

    Call arguments:
        x: the words: a list of strings (one sentence), a list of such
            lists, or a `tf.RaggedTensor` `[B, W]` of strings.
        y: optional word labels of the same shape as `x`, ints.
        sample_weight: optional, returned unchanged.

    Returns:
        `x` a dict with `token_ids` `[B, T]` int32, `padding_mask` and
        `global_mask` `[B, T]` bool; `y` (when given) the token labels
        `[B, T]` int32 with -100 where ignored.

    Example:

    >>> preprocessor = LongformerTokenClassifierPreprocessor(tokenizer)
    >>> x, y = preprocessor([["John", "lives", "in", "Paris"]], [[1, 0, 0, 2]])
    >>> preprocessor.word_ids([["John", "lives", "in", "Paris"]])  # -1: no word

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
        truncate="end",
        label_all_subwords=False,
        pad_to_sequence_length=False,
        **kwargs,
    ):
        utils.check_preprocessor_arguments(
            sequence_length, truncate, ("end", "error"), pad_to_sequence_length
        )
        check_bool("label_all_subwords", label_all_subwords)
        super().__init__(**kwargs)
        self.tokenizer = tokenizer
        self.packer = None
        self.label_packer = None
        self.sequence_length = sequence_length
        self.truncate = truncate
        self.label_all_subwords = label_all_subwords
        self.pad_to_sequence_length = pad_to_sequence_length

    def build(self, input_shape):
        def packer(start, end, pad):
            return StartEndPacker(
                start_value=start,
                end_value=end,
                pad_value=pad,
                sequence_length=self.sequence_length,
                _allow_python_workflow=False,
            )

        tokenizer = self.tokenizer
        self.packer = packer(tokenizer.start_token_id, tokenizer.end_token_id, tokenizer.pad_token_id)
        ignored = utils.IGNORED_LABEL
        self.label_packer = packer(ignored, ignored, ignored)
        self.built = True

    def _word_pieces(self, words):
        """Token ids of each word `[N, None]`, tokenized as a word start."""
        if not self.tokenizer.add_prefix_space:
            words = tf.strings.join([" ", words])
        return utils.tokenize(self.tokenizer, words)

    def _token_values(self, words, pieces, word_values, first_only):
        """`word_values` `[B, W]` spread over the tokens `[B, None]` of each word."""
        counts = pieces.row_lengths()
        values = tf.repeat(word_values.flat_values, counts)
        if first_only:
            first = tf.equal(tf.ragged.range(counts).flat_values, 0)
            values = tf.where(first, values, tf.cast(utils.IGNORED_LABEL, values.dtype))
        return words.with_flat_values(pieces.with_flat_values(values)).merge_dims(1, 2)

    def _tokenize(self, x):
        words, unbatched = _word_batch(x)
        pieces = self._word_pieces(words.flat_values)
        token_ids = words.with_flat_values(pieces).merge_dims(1, 2)
        if self.truncate == "error":
            utils.refuse_longer_than([token_ids], 2, self.sequence_length)
        lengths = tf.minimum(utils.row_lengths(token_ids) + 2, self.sequence_length)
        return words, pieces, token_ids, lengths, unbatched

    @preprocessing_function
    def call(self, x, y=None, sample_weight=None):
        word_labels = None
        if y is not None:
            word_labels, _ = _word_batch(y, "y")
            _check_same_words(_word_batch(x)[0], word_labels)
        words, pieces, token_ids, lengths, unbatched = self._tokenize(x)
        token_ids = self.packer(token_ids)
        padding_mask = utils.padding_mask_from_lengths(lengths, token_ids)
        labels = None
        if word_labels is not None:
            labels = self._token_values(
                words, pieces, tf.cast(word_labels, "int32"), not self.label_all_subwords
            )
            labels = self.label_packer(labels)
        features = utils.features(
            token_ids, padding_mask, utils.no_global_mask(token_ids), self.pad_to_sequence_length
        )
        if labels is not None and not self.pad_to_sequence_length:
            (labels,) = utils.trim_to_longest(padding_mask, labels)
        if unbatched:
            features = {key: value[0] for key, value in features.items()}
            labels = None if labels is None else labels[0]
        return keras.utils.pack_x_y_sample_weight(features, labels, sample_weight)

    @preprocessing_function
    def word_ids(self, x):
        """The word each token of `call(x)` comes from: `[B, T]` int32, -1 for none.

        Maps token predictions back to words: the first token of word `w`
        (counting from 0 in its row) holds `w`, its other tokens too;
        `<s>`, `</s>` and padding hold -1.
        """
        if not self.built:
            self.build(None)
        words, pieces, token_ids, lengths, unbatched = self._tokenize(x)
        word_index = tf.ragged.range(tf.cast(words.row_lengths(), "int32"))
        ids = self._token_values(words, pieces, word_index, first_only=False)
        ids = self.label_packer(ids)
        ids = tf.where(tf.equal(ids, utils.IGNORED_LABEL), -1, ids)
        if not self.pad_to_sequence_length:
            (ids,) = utils.trim_to_longest(utils.padding_mask_from_lengths(lengths, ids), ids)
        return ids[0] if unbatched else ids

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sequence_length": self.sequence_length,
                "truncate": self.truncate,
                "label_all_subwords": self.label_all_subwords,
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
        for packer in (self.packer, self.label_packer):
            if packer is not None:
                packer.sequence_length = value


def _word_batch(x, name="x"):
    """`x` as a `tf.RaggedTensor` `[B, W]`, and whether it was one sentence."""
    if isinstance(x, tf.RaggedTensor):
        return x, False
    x = tf.convert_to_tensor(x)
    if x.shape.rank == 1:
        return tf.RaggedTensor.from_tensor(x[tf.newaxis]), True
    if x.shape.rank == 2:
        return tf.RaggedTensor.from_tensor(x), False
    raise ValueError(
        f"`{name}` must be one sentence (a list of words) or a batch of them. "
        f"Received: {name} of rank {x.shape.rank}"
    )


def _check_same_words(words, labels):
    """One label per word, in every row."""
    expected, received = words.row_lengths(), labels.row_lengths()
    message = "`y` must hold one label per word of `x`."
    if tf.executing_eagerly():
        if expected.shape != received.shape or not bool(tf.reduce_all(expected == received)):
            raise ValueError(
                f"{message} Received: {received.numpy().tolist()} labels for "
                f"{expected.numpy().tolist()} words"
            )
        return
    tf.debugging.assert_equal(expected, received, message=message)
