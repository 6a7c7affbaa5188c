"""One generated token of a causal Longformer, timed at a given position.

`LongformerCausalLM.generate` keeps, per layer, a ring of the last
`window * dilation + 1` keys and values (`keras_longformer.models.
windowed_cache`), so a new token should cost the same at position 100 as
at position 16,000. This path times exactly that step: a one-layer causal
LM of the benchmark's hidden size, heads and window (vocabulary 1,000),
its cache seeded with the first `length - 2` tokens, then the cached
forward pass of token `length - 2` to the logits of token `length - 1`
(the last position its learned positions reach); the row's
`tokens_per_second` is the batch over its median. Compiled as each backend
generates: `tf.function` on TensorFlow, `jax.jit` over the model's state
on JAX (as keras-hub's generate does), eager on torch.
"""

import numpy as np

VOCABULARY = 1000


def build_causal_lm(config, length):
    from keras_longformer.models import LongformerBackbone
    from keras_longformer.models import LongformerCausalLM

    backbone = LongformerBackbone(
        vocabulary_size=VOCABULARY,
        num_layers=1,
        num_heads=config["heads"],
        hidden_dim=config["hidden"],
        intermediate_dim=4 * config["hidden"],
        window=config["window"],
        causal=True,
        max_sequence_length=length,
        dropout=0.0,
        attention_dropout=0.0,
    )
    return LongformerCausalLM(backbone)


def next_token(config, length):
    """Returns `(call, sync)`: one cached decoding step, predicting position `length - 1`."""
    if length < 3:
        raise ValueError(f"A generated token needs a prompt: length >= 3. Received: length={length}")
    model = build_causal_lm(config, length)
    rng = np.random.default_rng(0)
    token_ids = rng.integers(3, VOCABULARY, (config["batch"], length)).astype("int32")
    return cached_step(model, token_ids)


def cached_step(model, token_ids):
    """`(call, sync)`: the logits of the last position of `token_ids` `[B, T]`
    from the cached pass of position `T - 2`, the cache holding `0..T - 3`."""
    import keras

    from keras_longformer.models import windowed_cache

    index = token_ids.shape[1] - 1  # the step reads token `index - 1`, predicts token `index`
    padding_mask = np.ones_like(token_ids, bool)
    cache = windowed_cache.seed_cache(model.backbone, token_ids, padding_mask, index - 2)
    token_ids = keras.ops.convert_to_tensor(token_ids)
    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        step = tf.function(lambda: model._cached_next(token_ids, cache, index)[0])
        return step, None
    if backend == "jax":
        import jax

        variables = model.trainable_variables + model.non_trainable_variables
        state = [v.value for v in variables]

        @jax.jit
        def stateless_step(state, token_ids, cache):
            with keras.StatelessScope(state_mapping=list(zip(variables, state))):
                return model._cached_next(token_ids, cache, index)[0]

        return (lambda: stateless_step(state, token_ids, cache)), jax.block_until_ready
    import torch

    def eager_step():
        with torch.no_grad():
            return model._cached_next(token_ids, cache, index)[0]

    sync = torch.cuda.synchronize if torch.cuda.is_available() else None
    return eager_step, (lambda _: sync()) if sync else None
