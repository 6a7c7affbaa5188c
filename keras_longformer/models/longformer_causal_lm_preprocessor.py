import keras
from keras_hub.layers import StartEndPacker
from keras_hub.models import CausalLMPreprocessor
from keras_hub.src.utils.tensor_utils import preprocessing_function

from keras_longformer.models import preprocessing_utils as utils
from keras_longformer.models.longformer_backbone import LongformerBackbone
from keras_longformer.models.longformer_tokenizer import LongformerTokenizer


@keras.saving.register_keras_serializable(package="keras_longformer")
class LongformerCausalLMPreprocessor(CausalLMPreprocessor):
    """Raw text to next-token training pairs for a causal Longformer.

    Shapes: `B` batch, `T` = the longest row of the batch (at most
    `sequence_length`; exactly `sequence_length` with
    `pad_to_sequence_length=True`).

    Tokenizes, packs `<s> text </s>` into `sequence_length + 1` tokens and
    shifts by one, as keras-hub's `CausalLMPreprocessor`: `x` holds tokens
    `0 .. T-1`, `y` tokens `1 .. T`, `sample_weight` is 1 where `y` is a
    real token. No token gets global attention (a causal model's global
    tokens would have to come first, and plain text has none).
    `generate_preprocess` and `generate_postprocess` serve
    `LongformerCausalLM.generate`.

    Args:
        tokenizer: a `LongformerTokenizer`.
        sequence_length: int >= 2, the longest `x`.
        add_start_token: bool, put `<s>` first.
        add_end_token: bool, put `</s>` last.
        truncate: `"end"` (drop tokens past `sequence_length + 1`) or
            `"error"` (refuse: a `ValueError` on an eager call, an
            `InvalidArgumentError` inside `tf.data`).
        pad_to_sequence_length: bool; by default a batch is padded only to
            its longest row.
        **kwargs: `keras_hub.models.Preprocessor` arguments.

    Call arguments:
        x: a string or a batch of strings.
        y, sample_weight: ignored (the labels are the next tokens).

    Returns:
        `(x, y, sample_weight)`: `x` a dict with `token_ids` `[B, T]` int32,
        `padding_mask` and `global_mask` `[B, T]` bool; `y` `[B, T]` int32;
        `sample_weight` `[B, T]` bool.

    Example:

    >>> preprocessor = LongformerCausalLMPreprocessor(tokenizer, sequence_length=1024)
    >>> x, y, weights = preprocessor(["def f(x):", "import os"])

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
        add_start_token=True,
        add_end_token=True,
        truncate="end",
        pad_to_sequence_length=False,
        **kwargs,
    ):
        utils.check_preprocessor_arguments(
            sequence_length, truncate, ("end", "error"), pad_to_sequence_length
        )
        super().__init__(
            tokenizer,
            sequence_length=sequence_length,
            add_start_token=add_start_token,
            add_end_token=add_end_token,
            **kwargs,
        )
        self.truncate = truncate
        self.pad_to_sequence_length = pad_to_sequence_length

    def build(self, input_shape):
        self.packer = StartEndPacker(
            start_value=self.tokenizer.start_token_id,
            end_value=self.tokenizer.end_token_id,
            pad_value=self.tokenizer.pad_token_id,
            sequence_length=self.sequence_length,
            return_padding_mask=True,
            _allow_python_workflow=False,
        )
        self.built = True

    def _num_special_tokens(self, add_end_token):
        return int(self.add_start_token) + int(add_end_token)

    @preprocessing_function
    def call(self, x, y=None, sample_weight=None, sequence_length=None):
        sequence_length = sequence_length or self.sequence_length
        token_ids = utils.tokenize(self.tokenizer, x)
        if self.truncate == "error":
            # `x` drops the last packed token: it is `sequence_length` long.
            utils.refuse_longer_than(
                [token_ids], self._num_special_tokens(self.add_end_token) - 1, sequence_length
            )
        token_ids, padding_mask = self.packer(
            token_ids,
            sequence_length=sequence_length + 1,
            add_start_value=self.add_start_token,
            add_end_value=self.add_end_token,
        )
        y, sample_weight = token_ids[..., 1:], padding_mask[..., 1:]
        token_ids, padding_mask = token_ids[..., :-1], padding_mask[..., :-1]
        if not self.pad_to_sequence_length:
            y, sample_weight = utils.trim_to_longest(padding_mask, y, sample_weight)
        x = utils.features(
            token_ids,
            padding_mask,
            utils.no_global_mask(token_ids),
            self.pad_to_sequence_length,
        )
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

    @preprocessing_function
    def generate_preprocess(self, x, sequence_length=None):
        """Prompts to a `[B, sequence_length]` dict for generation (no `</s>`).

        `sequence_length` is `generate`'s `max_length`; a longer prompt is
        an error naming both numbers, never cut.
        """
        if not self.built:
            self.build(None)
        sequence_length = sequence_length or self.sequence_length
        token_ids = utils.tokenize(self.tokenizer, x)
        _refuse_long_prompts(token_ids, int(self.add_start_token), sequence_length)
        token_ids, padding_mask = self.packer(
            token_ids,
            sequence_length=sequence_length,
            add_start_value=self.add_start_token,
            add_end_value=False,
        )
        return {
            "token_ids": token_ids,
            "padding_mask": padding_mask,
            "global_mask": utils.no_global_mask(token_ids),
        }

    def get_config(self):
        config = super().get_config()
        config["truncate"] = self.truncate
        config["pad_to_sequence_length"] = self.pad_to_sequence_length
        return config


def _refuse_long_prompts(token_ids, num_special_tokens, max_length):
    import tensorflow as tf

    longest = tf.reduce_max(tf.reshape(utils.row_lengths(token_ids), [-1])) + num_special_tokens
    message = f"A prompt must fit in max_length={max_length} tokens (with <s>)."
    if tf.executing_eagerly():
        if int(longest) > max_length:
            raise ValueError(f"{message} Received: a prompt of {int(longest)} tokens, max_length={max_length}")
        return
    tf.debugging.assert_less_equal(longest, max_length, message=message)
