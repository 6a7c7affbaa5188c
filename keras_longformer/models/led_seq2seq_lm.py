"""`LEDSeq2SeqLM`: long-document summarization (keras-hub's `Seq2SeqLM` shape)."""

import keras
from keras import ops
from keras_hub.models import Seq2SeqLM
from keras_hub.src.utils.tensor_utils import any_equal

from keras_longformer.models.compile_round_trip import CompileRoundTrip
from keras_longformer.models.features_or_text import FeaturesOrText
from keras_longformer.models.global_token_check import GlobalTokenCheck
from keras_longformer.models.led_backbone import LEDBackbone
from keras_longformer.models.led_decoder_step import cross_attention_keys_values
from keras_longformer.models.led_decoder_step import decoder_layer_step
from keras_longformer.models.led_seq2seq_lm_preprocessor import LEDSeq2SeqLMPreprocessor
from keras_longformer.models.longformer_tied_logits import LongformerTiedLogits


def _per_layer(cross_attention_cache, num_layers):
    """`[(keys, values), ...]` per layer of a `[B, layers, 2, heads, S,
    head_dim]` cross-attention cache (a per-layer list is kept as it is)."""
    if isinstance(cross_attention_cache, (list, tuple)):
        return cross_attention_cache
    return [(cross_attention_cache[:, i, 0], cross_attention_cache[:, i, 1]) for i in range(num_layers)]


def _stop_mask(token_ids, stop_token_ids, prompt_mask):
    """True up to and including each row's first generated stop token."""
    ends = ops.cast(any_equal(token_ids, stop_token_ids, ops.logical_not(prompt_mask)), "int32")
    return ops.equal(ops.cumsum(ends, axis=-1) - ends, 0)


@keras.saving.register_keras_serializable(package="keras_longformer")
class LEDSeq2SeqLM(CompileRoundTrip, FeaturesOrText, GlobalTokenCheck, Seq2SeqLM):
    """An LED summarizer: the encoder reads the document once, the decoder writes.

    Shapes: `B` batch, `S` encoder length, `T` decoder length, `V`
    vocabulary.

    Hugging Face's `LEDForConditionalGeneration`: the `LEDBackbone`'s
    decoder output times the shared token embedding (tied) plus a bias
    (`final_logits_bias`). Trained with teacher forcing by `fit` (the labels
    are the decoder inputs shifted by one), and `generate()` runs keras-hub's
    samplers (greedy, beam, top-k, ...) over a decoder cache: the encoder
    and every layer's cross-attention keys and values are computed once,
    each new token then costs one decoder step.

    Args:
        backbone: an `LEDBackbone`.
        preprocessor: optional `LEDSeq2SeqLMPreprocessor` (raw text in,
            `<s>` global); None for token ids in.
        **kwargs: `keras.Model` arguments.

    Call arguments:
        inputs: the backbone's dict (`encoder_token_ids`,
            `encoder_padding_mask`, `encoder_global_mask`,
            `decoder_token_ids`, `decoder_padding_mask`).

    Returns:
        `[B, T, V]` float32 logits of the next decoder token.

    Example:

    >>> lm = LEDSeq2SeqLM(LEDBackbone(vocabulary_size=100, num_layers=2,
    ...     num_heads=2, hidden_dim=32, intermediate_dim=64, window=16))
    >>> out = lm.generate({
    ...     "encoder_token_ids": ids, "encoder_padding_mask": ids != 1,
    ...     "encoder_global_mask": np.arange(ids.shape[1])[None] == 0,
    ...     "decoder_token_ids": np.array([[2] + [1] * 31]),
    ...     "decoder_padding_mask": np.arange(32)[None] < 1,
    ... }, stop_token_ids=[2])

    Reference:
    - [Beltagy, Peters, Cohan, Longformer: The Long-Document Transformer,
      2020](https://arxiv.org/abs/2004.05150), section 6
    """

    backbone_cls = LEDBackbone
    preprocessor_cls = LEDSeq2SeqLMPreprocessor

    def __init__(self, backbone, preprocessor=None, **kwargs):
        if not isinstance(backbone, LEDBackbone):
            raise ValueError(f"`backbone` must be an LEDBackbone. Received: {type(backbone).__name__}")
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        decoder = LongformerTiedLogits(backbone.token_embedding, dtype=backbone.dtype_policy,
                                       name="decoder")
        as_float32 = keras.layers.Activation(None, dtype="float32", name="logits")
        # === Functional model ===
        inputs = backbone.input
        outputs = as_float32(decoder(backbone(inputs)["decoder_sequence_output"]))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.decoder = decoder

    def compile(self, optimizer="auto", loss="auto", jit_compile="auto", **kwargs):
        """keras-hub's `Seq2SeqLM.compile` (weighted accuracy, a `sampler` for
        `generate`) where "auto" is LED fine-tuning's optimizer: AdamW 3e-5,
        weight decay 0.01, gradients clipped to norm 1. `save` keeps what is
        compiled here, and `load_model` compiles it again."""
        if optimizer == "auto":
            optimizer = keras.optimizers.AdamW(3e-5, weight_decay=0.01, global_clipnorm=1.0)
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        super().compile(optimizer=optimizer, loss=loss, jit_compile=jit_compile, **kwargs)
        self._jit_compile_requested = jit_compile

    # === fit, evaluate and predict (FeaturesOrText) ===

    def _takes_features(self, x):
        # With a preprocessor, raw text also comes as a dict (`encoder_text`, `decoder_text`).
        return self.preprocessor is None or (isinstance(x, dict) and "encoder_token_ids" in x)

    # === Generation ===

    def call_encoder(self, token_ids, padding_mask, global_mask):
        """The encoder's output `[B, S, D]` (inference mode)."""
        backbone = self.backbone
        x = backbone.embed("encoder", token_ids)
        padding, glob = ops.not_equal(padding_mask, 0), ops.not_equal(global_mask, 0)
        for layer in backbone.encoder_layers:
            x = layer(x, padding_mask=padding, global_mask=glob)
        return x

    def call_decoder_with_cache(self, encoder_padding_mask, decoder_token_ids, self_attention_cache,
                                self_attention_cache_update_index, cross_attention_cache):
        """One decoder pass over `decoder_token_ids` (starting at position
        `self_attention_cache_update_index`), reading and updating the
        self-attention cache `[B, layers, 2, M, heads, head_dim]` and reading
        the cross-attention cache of `call_cross_attention_cache` (or the
        same split per layer into `(keys, values)`, as `generate` keeps it).

        Returns:
            `(logits, hidden_states, self_attention_cache)`.
        """
        x = self.backbone.embed("decoder", decoder_token_ids, start_index=self_attention_cache_update_index)
        cross_attention_cache = _per_layer(cross_attention_cache, self.backbone.num_layers)
        caches = []
        for i, layer in enumerate(self.backbone.decoder_layers):
            x, cache = decoder_layer_step(layer, x, self_attention_cache[:, i, ...],
                                          self_attention_cache_update_index, cross_attention_cache[i],
                                          encoder_padding_mask)
            caches.append(cache)
        logits = ops.cast(self.decoder(x), "float32")
        return logits, x, ops.stack(caches, axis=1)

    def call_cross_attention_cache(self, encoder_hidden_states):
        """Every decoder layer's cross-attention keys and values of the
        encoder's output, `[B, layers, 2, heads, S, head_dim]`: what a
        generation computes once per document (padded keys are masked when
        read)."""
        return ops.stack([cross_attention_keys_values(layer, encoder_hidden_states)
                          for layer in self.backbone.decoder_layers], axis=1)

    def _empty_self_attention_cache(self, decoder_token_ids):
        backbone = self.backbone
        shape = [ops.shape(decoder_token_ids)[0], backbone.num_layers, 2, ops.shape(decoder_token_ids)[1],
                 backbone.num_heads, backbone.hidden_dim // backbone.num_heads]
        return ops.zeros(shape, dtype=self.compute_dtype)

    def generate_step(self, inputs, stop_token_ids=None):
        """Generates a batch: the encoder once, the caches filled from the
        decoder prompt, then one cached decoder step per new token.

        Args:
            inputs: the backbone's dict; the decoder prompt on the left of
                `decoder_token_ids` (`decoder_padding_mask` true there), at
                least one token per row (`</s>`, LED's decoder start).
                Without `encoder_global_mask` no token is global, as in
                Hugging Face's `generate` without a `global_attention_mask`.
            stop_token_ids: optional ids that end a row.

        Returns:
            dict of `decoder_token_ids` and `decoder_padding_mask` (true up
            to and including each row's stop token).
        """
        encoder_token_ids = inputs["encoder_token_ids"]
        encoder_padding_mask = inputs["encoder_padding_mask"]
        global_mask = inputs.get("encoder_global_mask")
        if global_mask is None:
            global_mask = ops.zeros_like(encoder_token_ids)
        decoder_token_ids, decoder_padding_mask = inputs["decoder_token_ids"], inputs["decoder_padding_mask"]
        self.backbone.check_lengths(encoder_token_ids, decoder_token_ids)
        encoder_hidden_states = self.call_encoder(encoder_token_ids, encoder_padding_mask, global_mask)
        # Split once per generation, not once per step: each step then reads
        # every layer's keys and values where they lie.
        cross_cache = _per_layer(self.call_cross_attention_cache(encoder_hidden_states), self.backbone.num_layers)
        _, hidden_states, self_cache = self.call_decoder_with_cache(
            encoder_padding_mask, decoder_token_ids, self._empty_self_attention_cache(decoder_token_ids), 0,
            cross_cache,
        )
        index = ops.min(ops.sum(ops.cast(decoder_padding_mask, "int32"), axis=-1))

        def next(prompt, cache, index):
            self_cache, cross_cache = cache
            token = ops.slice(prompt, [0, index - 1], [ops.shape(prompt)[0], 1])
            logits, hidden, self_cache = self.call_decoder_with_cache(
                encoder_padding_mask, token, self_cache, index - 1, cross_cache
            )
            return ops.squeeze(logits, axis=1), ops.squeeze(hidden, axis=1), (self_cache, cross_cache)

        decoder_token_ids = self.sampler(
            next=next, prompt=decoder_token_ids, cache=(self_cache, cross_cache), index=index,
            mask=decoder_padding_mask, stop_token_ids=stop_token_ids, hidden_states=hidden_states,
            model=self,
        )
        if stop_token_ids is None:
            mask = ops.ones_like(decoder_token_ids, dtype="bool")
        else:
            mask = _stop_mask(decoder_token_ids, stop_token_ids, ops.cast(decoder_padding_mask, "bool"))
        return {"decoder_token_ids": decoder_token_ids, "decoder_padding_mask": mask}
