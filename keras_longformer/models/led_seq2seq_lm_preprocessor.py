"""`LEDSeq2SeqLMPreprocessor`: documents and summaries as text in, LED's features out."""

import keras
from keras_hub.layers import StartEndPacker
from keras_hub.models import Seq2SeqLMPreprocessor
from keras_hub.src.utils.tensor_utils import preprocessing_function

from keras_longformer.models.led_backbone import LEDBackbone
from keras_longformer.models.longformer_tokenizer import LongformerTokenizer

try:
    import tensorflow as tf
except ImportError:  # keras-hub's preprocessing runs on tf.data: TensorFlow is a dependency
    tf = None


def _first_token_global(padding_mask):
    """`<s>` global (the first position of every non-empty row), as Hugging
    Face's LED examples set `global_attention_mask`."""
    first = tf.equal(tf.range(tf.shape(padding_mask)[-1]), 0)
    return tf.logical_and(tf.cast(padding_mask, "bool"), first)


@keras.saving.register_keras_serializable(package="keras_longformer")
class LEDSeq2SeqLMPreprocessor(Seq2SeqLMPreprocessor):
    """Documents and summaries to teacher-forced LED training triples.

    Shapes: `B` batch, `S` = `encoder_sequence_length`, `T` =
    `decoder_sequence_length`.

    As keras-hub's BART preprocessor (LED is BART's network): the document
    is packed as `<s> text </s>` into `S` tokens, the summary as
    `</s> <s> text </s>` into `T + 1`, shifted by one (`</s>` is LED's
    decoder start, as Hugging Face's `decoder_start_token_id=2`). The
    encoder's `<s>` is its one global token. `generate_preprocess` and
    `generate_postprocess` serve `LEDSeq2SeqLM.generate`.

    Args:
        tokenizer: a `LongformerTokenizer` (RoBERTa's byte-level BPE, which
            LED and BART use).
        encoder_sequence_length: int, the document's tokens.
        decoder_sequence_length: int, the summary's tokens.
        **kwargs: `keras_hub.models.Preprocessor` arguments.

    Call arguments:
        x: dict of `encoder_text` and `decoder_text` (strings or batches).
        y, sample_weight: ignored (the labels are the summary's next tokens).

    Returns:
        `(x, y, sample_weight)`: `x` the `LEDBackbone`'s dict
        (`encoder_token_ids`, `encoder_padding_mask`, `encoder_global_mask`
        `[B, S]`; `decoder_token_ids`, `decoder_padding_mask` `[B, T]`),
        `y` `[B, T]` int32, `sample_weight` `[B, T]`.

    Example:

    >>> preprocessor = LEDSeq2SeqLMPreprocessor(tokenizer, encoder_sequence_length=4096,
    ...                                         decoder_sequence_length=256)
    >>> x, y, weights = preprocessor({"encoder_text": documents, "decoder_text": summaries})

    Reference:
    - [Beltagy, Peters, Cohan, Longformer: The Long-Document Transformer,
      2020](https://arxiv.org/abs/2004.05150), section 6
    """

    backbone_cls = LEDBackbone
    tokenizer_cls = LongformerTokenizer

    def build(self, input_shape):
        super().build(input_shape)
        self.decoder_packer = StartEndPacker(
            start_value=[self.tokenizer.end_token_id, self.tokenizer.start_token_id],
            end_value=self.tokenizer.end_token_id,
            pad_value=self.tokenizer.pad_token_id,
            sequence_length=self.decoder_sequence_length,
            return_padding_mask=True,
        )

    def get_config(self):
        # keras-hub's Seq2SeqLMPreprocessor does not save its lengths: a
        # preset would come back with the defaults.
        config = super().get_config()
        config.update(encoder_sequence_length=self.encoder_sequence_length,
                      decoder_sequence_length=self.decoder_sequence_length)
        return config

    def _pack_encoder(self, text, sequence_length):
        token_ids, padding_mask = self.encoder_packer(
            self.tokenizer(text), sequence_length=sequence_length or self.encoder_sequence_length
        )
        return {"encoder_token_ids": token_ids, "encoder_padding_mask": padding_mask,
                "encoder_global_mask": _first_token_global(padding_mask)}

    @preprocessing_function
    def call(self, x, y=None, sample_weight=None, *, encoder_sequence_length=None,
             decoder_sequence_length=None, sequence_length=None):
        decoder_sequence_length = (decoder_sequence_length or sequence_length
                                   or self.decoder_sequence_length)
        features = self._pack_encoder(x["encoder_text"], encoder_sequence_length)
        decoder_token_ids, decoder_padding_mask = self.decoder_packer(
            self.tokenizer(x["decoder_text"]), sequence_length=decoder_sequence_length + 1
        )
        features["decoder_token_ids"] = decoder_token_ids[..., :-1]
        features["decoder_padding_mask"] = decoder_padding_mask[..., :-1]
        return keras.utils.pack_x_y_sample_weight(
            features, decoder_token_ids[..., 1:], decoder_padding_mask[..., 1:]
        )

    @preprocessing_function
    def generate_preprocess(self, x, *, encoder_sequence_length=None,
                            decoder_sequence_length=None, sequence_length=None):
        """Documents (and optional summary prompts) to generation inputs:
        the decoder prompt `</s> <s> prompt`, no end token."""
        if not self.built:
            self.build(None)
        if isinstance(x, dict):
            encoder_text, decoder_text = x["encoder_text"], x["decoder_text"]
        else:
            encoder_text, decoder_text = x, self._empty_decoder_text(x)
        features = self._pack_encoder(encoder_text, encoder_sequence_length)
        decoder_token_ids, decoder_padding_mask = self.decoder_packer(
            self.tokenizer(decoder_text),
            sequence_length=decoder_sequence_length or sequence_length or self.decoder_sequence_length,
            add_end_value=False,
        )
        features["decoder_token_ids"] = decoder_token_ids
        features["decoder_padding_mask"] = decoder_padding_mask
        return features
