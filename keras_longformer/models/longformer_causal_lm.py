import math

import keras
from keras import ops
from keras_hub.models import CausalLM

from keras_longformer.models import windowed_cache
from keras_longformer.models.longformer_causal_lm_preprocessor import LongformerCausalLMPreprocessor
from keras_longformer.models.longformer_task import LongformerTask
from keras_longformer.models.longformer_task import check_backbone
from keras_longformer.models.longformer_task import check_preprocessor
from keras_longformer.models.longformer_tied_logits import LongformerTiedLogits

# Logit given to tokens generation never picks (the padding token).
_NEVER = -1e9


@keras.saving.register_keras_serializable(package="keras_longformer")
class LongformerCausalLM(LongformerTask, CausalLM):
    """Causal (left-to-right) language model on a causal `LongformerBackbone`.

    Shapes: `B` batch, `T` sequence length, `V` vocabulary size.

    Logits of the next token at every position: `sequence_output @ E^T + b`
    with the decoder tied to the token embedding `E`. The backbone must be
    built with `causal=True`, so no position sees a later one; the paper's
    character-level model uses windows growing per layer and dilation on
    some heads of the upper layers, which the backbone takes as
    `window=[...]` and `dilation=[...]`.

    `generate(prompts, max_length)` is keras-hub's, with its samplers
    (`compile(sampler="greedy")`, `"top_k"`, `"top_p"`, ...). A causal
    Longformer layer never looks further back than `window * dilation`
    tokens, so the cache holds that many keys and values per layer (see
    `windowed_cache`): memory O(window) per layer, and each new token costs
    the same early and late in the sequence. `use_cache=False` recomputes
    the whole sequence at every step instead (the same tokens; a check).
    The padding token is never generated. Generation reads learned positions
    up to `max_sequence_length`: a longer `max_length` is an error, as is a
    prompt longer than `max_length` or a prompt with global tokens.

    The backbone's pooler does not reach these outputs: it is frozen
    (`trainable=False`) so that training sees no weight without a gradient.

    Args:
        backbone: a `LongformerBackbone` with `causal=True`.
        preprocessor: optional `LongformerCausalLMPreprocessor`; with one,
            `fit` takes raw strings and `generate` takes and returns them.
        dtype: optional dtype policy of the head (defaults to the backbone's).
        compile: bool, compile with the defaults below at construction.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: the backbone's dict (`token_ids`, `padding_mask`, `global_mask`).

    Returns:
        `[B, T, V]` float32 logits; position `t` predicts token `t + 1`.

    `compile()` defaults: AdamW(1e-3, weight decay 0.01, clip norm 1) (a
    from-scratch learning rate), sparse categorical cross-entropy ignoring
    label -100 (fit with `y = token_ids` shifted left by one, or raw text
    with a preprocessor) and the `"top_k"` sampler, as keras-hub.

    Example:

    >>> backbone = LongformerBackbone(
    ...     vocabulary_size=256, num_layers=4, num_heads=4, hidden_dim=128,
    ...     intermediate_dim=512, window=[16, 32, 64, 128],
    ...     dilation=[1, 1, [1, 1, 2, 2], [1, 1, 2, 2]], causal=True,
    ...     pad_token_id=0)
    >>> lm = LongformerCausalLM(backbone)
    >>> lm.fit(features, next_tokens)
    >>> lm.compile(sampler="greedy")
    >>> lm.generate({"token_ids": prompt_ids, "padding_mask": prompt_mask},
    ...     stop_token_ids=None)  # [B, T] ids, the prompt continued

    Reference:
    - [Beltagy, Peters, Cohan, Longformer: The Long-Document Transformer,
      2020](https://arxiv.org/abs/2004.05150)
    """

    preprocessor_cls = LongformerCausalLMPreprocessor

    def __init__(self, backbone, preprocessor=None, dtype=None, compile=True, **kwargs):
        check_backbone(backbone, "LongformerCausalLM")
        check_preprocessor(preprocessor, self.preprocessor_cls, "LongformerCausalLM")
        if not backbone.causal:
            raise ValueError(
                "LongformerCausalLM needs a backbone built with causal=True. "
                f"Received: backbone.causal={backbone.causal!r}"
            )
        dtype = dtype or backbone.dtype_policy
        # === Layers ===
        decoder = LongformerTiedLogits(backbone.token_embedding, dtype=dtype, name="decoder")
        as_float32 = keras.layers.Activation(None, dtype="float32", name="logits")
        # === Functional model ===
        inputs = backbone.input
        outputs = as_float32(decoder(backbone(inputs)["sequence_output"]))
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            backbone=backbone,
            preprocessor=preprocessor,
            compile=compile,
            **kwargs,
        )
        # === Config ===
        self.decoder = decoder
        self.use_cache = True
        self._finish_init()

    def with_attention(self, window=None, dilation=None, max_sequence_length=None):
        """A copy for the next training phase: new attention, the same weights.

        `LongformerBackbone.with_attention` on the backbone (positions tiled
        when `max_sequence_length` grows), with this model's own weight, the
        decoder's bias, copied; the preprocessor is shared. The copy is
        compiled with the task's defaults: compile it again for a new
        learning rate.

        Example:

        >>> longer = causal_lm.with_attention(window=64, max_sequence_length=1024)
        """
        backbone = self.backbone.with_attention(
            window=window, dilation=dilation, max_sequence_length=max_sequence_length
        )
        copy = LongformerCausalLM(backbone, preprocessor=self.preprocessor)
        copy.decoder.bias.assign(self.decoder.bias)
        return copy

    def _per_token_width(self):
        return self.preprocessor.sequence_length

    def _default_compile(self):
        optimizer = keras.optimizers.AdamW(
            learning_rate=1e-3, weight_decay=0.01, global_clipnorm=1.0
        )
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-100)
        return optimizer, loss, None

    def compile(self, optimizer="auto", loss="auto", metrics="auto", sampler="top_k", **kwargs):
        """`keras.Model.compile` with the task's defaults, and the generation sampler."""
        kwargs.setdefault("weighted_metrics", None)
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, sampler=sampler, **kwargs)

    # === Generation ===

    def generate(self, inputs, max_length=None, stop_token_ids="auto", strip_prompt=False, use_cache=True):
        """keras-hub's `CausalLM.generate`, checked, with a windowed cache.

        Args:
            inputs: prompts (strings, with a preprocessor), or a dict of
                `token_ids` and `padding_mask` `[B, T]` (the prompt on the
                left, at least one token per row; `T` is then the length
                generated to).
            max_length: int, the generated length (prompt included);
                defaults to the preprocessor's `sequence_length`. At most
                the backbone's `max_sequence_length`.
            stop_token_ids: keras-hub's (`"auto"`: `</s>`; None: never stop).
            strip_prompt: bool, return only the generated part.
            use_cache: bool, the windowed cache (True) or a full forward
                pass at every step (False, for checking).

        Returns:
            Strings with a preprocessor, else the dict of `token_ids` and
            `padding_mask`.
        """
        limit = self.backbone.max_sequence_length
        length = max_length
        if length is None and isinstance(inputs, dict) and "token_ids" in inputs:
            length = ops.shape(ops.convert_to_tensor(inputs["token_ids"]))[-1]
        if length is None and self.preprocessor is not None:
            length = self.preprocessor.sequence_length
        if length is not None and int(length) > limit:
            raise ValueError(
                "Generation reads learned positions only up to the backbone's "
                f"max_sequence_length={limit}. Received: max_length={int(length)}"
            )
        if isinstance(inputs, dict) and inputs.get("global_mask") is not None:
            if bool(ops.any(ops.convert_to_tensor(inputs["global_mask"]))):
                raise ValueError(
                    "Generation supports prompts without global tokens. Received: a "
                    "`global_mask` with global tokens"
                )
        if use_cache != self.use_cache:
            self.use_cache, self.generate_function = bool(use_cache), None
        return super().generate(
            inputs, max_length=max_length, stop_token_ids=stop_token_ids, strip_prompt=strip_prompt
        )

    def _uncached_next(self, prompt, cache, index):
        """Logits after position `index - 1` from a full forward pass (no cache)."""
        positions = ops.arange(ops.shape(prompt)[1], dtype="int32")[None, :]
        features = {
            "token_ids": prompt,
            "padding_mask": ops.broadcast_to(positions < index, ops.shape(prompt)),
            "global_mask": ops.zeros_like(prompt, dtype="bool"),
        }
        hidden = ops.take(self.backbone(features, training=False)["sequence_output"], index - 1, axis=1)
        logits = ops.cast(self.decoder(hidden[:, None]), "float32")[:, 0]
        return logits, hidden, cache

    def _cached_next(self, prompt, cache, index):
        """Logits after position `index - 1`, reading and updating the windowed cache."""
        position = index - 1
        token = ops.slice(prompt, [0, position], [ops.shape(prompt)[0], 1])
        hidden, cache = windowed_cache.call_with_cache(self.backbone, token, cache, position)
        logits = ops.cast(self.decoder(hidden), "float32")
        return logits[:, 0], hidden[:, 0], cache

    def generate_step(self, inputs, stop_token_ids=None):
        """One batch of generation (compiled by keras-hub's `make_generate_function`)."""
        from keras_hub.src.utils.tensor_utils import any_equal

        token_ids = ops.convert_to_tensor(inputs["token_ids"])
        padding_mask = ops.cast(inputs["padding_mask"], "bool")
        row_lengths = ops.sum(ops.cast(padding_mask, "int32"), axis=-1)
        # The first position no row has a prompt token at.
        index = ops.min(row_lengths)
        if self.use_cache:
            cache = windowed_cache.seed_cache(self.backbone, token_ids, padding_mask, index - 2)
            step = self._cached_next
        else:
            cache, step = (), self._uncached_next
        pad = self.backbone.pad_token_id
        never_pad = ops.convert_to_tensor(
            [[_NEVER if i == pad else 0.0 for i in range(self.backbone.vocabulary_size)]]
        )

        def next(prompt, cache, index):
            logits, hidden, cache = step(prompt, cache, index)
            return logits + never_pad, hidden, cache

        token_ids = self.sampler(
            next=next,
            prompt=token_ids,
            cache=cache,
            index=index,
            mask=padding_mask,
            stop_token_ids=stop_token_ids,
            model=self,
        )
        if stop_token_ids is not None:
            # As keras-hub's causal LMs: padding after the first new stop token.
            ends = ops.cast(any_equal(token_ids, stop_token_ids, ops.logical_not(padding_mask)), "int32")
            after = ops.cumsum(ends, axis=-1) - ends
            padding_mask = ops.logical_not(ops.cast(after, "bool"))
        else:
            padding_mask = ops.ones_like(token_ids, dtype="bool")
        return {"token_ids": token_ids, "padding_mask": padding_mask}


def bits_per_token(logits, targets, mask=None):
    """Mean negative log2-likelihood of `targets` `[B, T]` under `logits` `[B, T, V]`.

    `mask` `[B, T]` (bool or 0/1) selects the positions that count.
    Returns a float32 scalar tensor.
    """
    logits = ops.cast(logits, "float32")
    log_probs = ops.log_softmax(logits, axis=-1)
    picked = ops.take_along_axis(log_probs, ops.cast(targets, "int32")[..., None], axis=-1)[..., 0]
    if mask is None:
        mask = ops.ones_like(picked)
    mask = ops.cast(ops.not_equal(mask, 0), "float32")
    nats = -ops.sum(picked * mask) / ops.maximum(ops.sum(mask), 1.0)
    return nats / math.log(2.0)
