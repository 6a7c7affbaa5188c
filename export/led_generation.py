"""`LEDOnnxGenerator`: greedy summarization with the exported LED pair, in onnxruntime alone."""

import json
import os

import numpy as np

from keras_longformer.export.session import onnx_session

ENCODER_FILENAME = "encoder.onnx"
DECODER_FILENAME = "decoder.onnx"
GENERATION_FILENAME = "generation.json"


class LEDOnnxGenerator:
    """Greedy generation from a directory written by `export_led_onnx`.

    Shapes: `B` batch, `S` encoder length, `P` decoder prompt length, `N`
    generated length (prompt included, at most `max_length`).

    The encoder runs once (its output and every decoder layer's
    cross-attention keys and values); then one decoder run over the prompt
    and one per new token, each reading and returning a self-attention
    cache of `max_length` positions. A row is done at its first stop token;
    the rest of it holds `pad_token_id`. Nothing but numpy and onnxruntime
    is used: this is what a server runs.

    Args:
        directory: the export's directory (`encoder.onnx`, `decoder.onnx`,
            `generation.json`).
        provider: `"auto"` (CUDA when it can really be had), `"cuda"` or
            `"cpu"`; see `onnx_session`.

    Attributes:
        config: `generation.json`: `decoder_prompt` (ids every summary
            starts with), `end_token_id`, `pad_token_id`,
            `max_decoder_sequence_length`, `max_encoder_sequence_length`.

    Example:

    >>> generator = LEDOnnxGenerator("led_onnx")
    >>> tokens = generator.generate(ids, padding_mask, global_mask, max_length=64)
    """

    def __init__(self, directory, provider="auto"):
        directory = os.fspath(directory)
        with open(os.path.join(directory, GENERATION_FILENAME)) as handle:
            self.config = json.load(handle)
        self.encoder = onnx_session(os.path.join(directory, ENCODER_FILENAME), provider=provider)
        self.decoder = onnx_session(os.path.join(directory, DECODER_FILENAME), provider=provider)

    def encode(self, encoder_token_ids, encoder_padding_mask, encoder_global_mask=None):
        """The encoder's `(encoder_hidden_states, cross_attention_cache)`."""
        ids = np.asarray(encoder_token_ids, "int32")
        if encoder_global_mask is None:
            encoder_global_mask = np.zeros_like(ids)
        feeds = {
            "encoder_token_ids": ids,
            "encoder_padding_mask": np.asarray(encoder_padding_mask).astype("int32"),
            "encoder_global_mask": np.asarray(encoder_global_mask).astype("int32"),
        }
        hidden, cross_cache = self.encoder.run(["encoder_hidden_states", "cross_attention_cache"], feeds)
        return hidden, cross_cache

    def generate(self, encoder_token_ids, encoder_padding_mask, encoder_global_mask=None, *,
                 max_length=None, decoder_prompt=None, stop_token_ids=None, return_logits=False):
        """Greedy summaries of a batch of documents.

        Args:
            encoder_token_ids: `[B, S]` ids of the documents.
            encoder_padding_mask: `[B, S]`, true (1) for real tokens.
            encoder_global_mask: optional `[B, S]`, true (1) for global
                tokens (the preprocessor's: `<s>`); none when omitted.
            max_length: the longest output, prompt included; defaults to
                `max_decoder_sequence_length`, which it may not exceed.
            decoder_prompt: ids every row starts with; defaults to the
                export's `decoder_prompt`.
            stop_token_ids: ids that end a row; defaults to
                `[end_token_id]`; `()` never stops early.
            return_logits: also return the logits `[B, N - P, V]` each
                generated token was chosen from.

        Returns:
            `[B, N]` int32 token ids (the prompt first), or `(ids, logits)`.
        """
        config = self.config
        limit = config["max_decoder_sequence_length"]
        max_length = limit if max_length is None else int(max_length)
        prompt = np.asarray(config["decoder_prompt"] if decoder_prompt is None else decoder_prompt, "int32")
        if not 1 <= len(prompt) < max_length <= limit:
            raise ValueError(
                f"`max_length` must be more than the decoder prompt's {len(prompt)} tokens and at most "
                f"max_decoder_sequence_length={limit}. Received: max_length={max_length}"
            )
        stops = np.asarray([config["end_token_id"]] if stop_token_ids is None else list(stop_token_ids), "int32")
        _, cross_cache = self.encode(encoder_token_ids, encoder_padding_mask, encoder_global_mask)
        padding = np.asarray(encoder_padding_mask).astype("int32")
        batch, layers, _, heads, _, head_dim = cross_cache.shape
        self_cache = np.zeros((batch, layers, 2, max_length, heads, head_dim), cross_cache.dtype)
        tokens = np.repeat(prompt[None], batch, axis=0)
        done = np.zeros(batch, bool)
        chosen_logits = []
        new_tokens, index = tokens, 0
        while tokens.shape[1] < max_length and not done.all():
            logits, self_cache = self.decoder.run(["logits", "next_self_attention_cache"], {
                "decoder_token_ids": new_tokens, "encoder_padding_mask": padding,
                "self_attention_cache": self_cache, "cross_attention_cache": cross_cache,
                "cache_update_index": np.array([index], "int32"),
            })
            index += new_tokens.shape[1]
            chosen_logits.append(logits[:, -1])
            next_token = np.where(done, config["pad_token_id"], logits[:, -1].argmax(-1)).astype("int32")
            done |= np.isin(next_token, stops)
            new_tokens = next_token[:, None]
            tokens = np.concatenate([tokens, new_tokens], axis=1)
        if return_logits:
            return tokens, np.stack(chosen_logits, axis=1)
        return tokens
