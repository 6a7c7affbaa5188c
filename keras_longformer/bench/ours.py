"""Our `LongformerSelfAttention` as a timed callable, on any Keras backend.

The forward pass is compiled the way each backend runs fastest without a
user's help: `tf.function` on TensorFlow, `jax.jit` on JAX, eager on torch
(no `torch.compile`: its compile time would dwarf the run). Forward plus
backward differentiates the sum of the output with respect to the input and
every weight.
"""

import inspect

import numpy as np


def inputs(config, length, seed=0):
    """`[B, T, D]` float32 hidden states and a `[B, T]` mask with the first
    `num_global` tokens global."""
    rng = np.random.default_rng(seed)
    hidden_states = rng.standard_normal(
        (config["batch"], length, config["hidden"])
    ).astype("float32")
    global_mask = np.zeros((config["batch"], length), bool)
    global_mask[:, : config["num_global"]] = True
    return hidden_states, global_mask


def build_layer(config, dtype, backend):
    from keras_longformer.layers import LongformerSelfAttention

    kwargs = dict(
        num_heads=config["heads"],
        key_dim=config["hidden"] // config["heads"],
        window=config["window"],
        dtype=dtype,
    )
    accepted = inspect.signature(LongformerSelfAttention.__init__).parameters
    if backend == "jax" and "max_global_tokens" in accepted:
        # JAX traces static shapes: the number of global tokens needs a bound.
        kwargs["max_global_tokens"] = max(config["num_global"], 1)
    layer = LongformerSelfAttention(**kwargs)
    layer.build((config["batch"], None, config["hidden"]))
    return layer


def ours(config, length, dtype, mode):
    """Returns `(call, sync)`: a no-argument callable running one step, and a
    function that blocks until its result is computed."""
    import keras

    backend = keras.config.backend()
    layer = build_layer(config, dtype, backend)
    hidden_states, global_mask = inputs(config, length)
    if backend == "tensorflow":
        return _tensorflow(layer, hidden_states, global_mask, mode)
    if backend == "jax":
        return _jax(layer, hidden_states, global_mask, mode)
    if backend == "torch":
        return _torch(layer, hidden_states, global_mask, mode)
    raise ValueError(f"Unsupported Keras backend. Received: backend={backend!r}")


def _tensorflow(layer, hidden_states, global_mask, mode):
    import tensorflow as tf

    x = tf.constant(hidden_states)
    mask = tf.constant(global_mask)
    if mode == "forward":
        step = tf.function(lambda: layer(x, global_mask=mask))
    else:

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(tf.cast(layer(x, global_mask=mask), "float32"))
            return tape.gradient(loss, [x] + layer.trainable_variables)

    # A tf.function call on CPU returns once its outputs are computed.
    return step, None


def _jax(layer, hidden_states, global_mask, mode):
    import jax
    import jax.numpy as jnp

    trainable = [v.value for v in layer.trainable_variables]
    non_trainable = [v.value for v in layer.non_trainable_variables]
    x = jnp.asarray(hidden_states)
    mask = jnp.asarray(global_mask)

    def forward(trainable, x):
        output, _ = layer.stateless_call(trainable, non_trainable, x, global_mask=mask)
        return output

    if mode == "forward":
        compiled = jax.jit(forward)
        return (lambda: compiled(trainable, x)), jax.block_until_ready
    loss = lambda trainable, x: jnp.sum(forward(trainable, x).astype("float32"))
    compiled = jax.jit(jax.grad(loss, argnums=(0, 1)))
    return (lambda: compiled(trainable, x)), jax.block_until_ready


def _torch(layer, hidden_states, global_mask, mode):
    import torch

    device = next(iter(layer.trainable_variables)).value.device
    x = torch.as_tensor(hidden_states, device=device)
    mask = torch.as_tensor(global_mask, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    if mode == "forward":

        def step():
            with torch.no_grad():
                return layer(x, global_mask=mask)

        return step, (lambda _: sync()) if sync else None
    x.requires_grad_(True)

    def step():
        layer.zero_grad(set_to_none=True)
        x.grad = None
        layer(x, global_mask=mask).float().sum().backward()
        return x.grad

    return step, (lambda _: sync()) if sync else None
