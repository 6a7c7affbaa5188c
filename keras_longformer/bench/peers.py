"""The peers as timed callables, and our layer exported to onnxruntime.

- Keras `MultiHeadAttention(sliding_window=2w + 1)` in a `tf.function`: the
  same band (`sliding_window - 1` keys each side), no global tokens, built
  on a dense `[T, T]` mask.
- Hugging Face's PyTorch `LongformerSelfAttention` with
  `attention_window=2w` (its window is two-sided) and the same global
  tokens, in eval mode (dropout 0).
- Our layer in a functional model, exported once with `export_onnx` (which
  verifies it against Keras) and run by onnxruntime on CUDA where it can,
  else on CPU.

Each builder returns `(call, sync)` like `keras_longformer.bench.ours.ours`.
"""

import numpy as np

from keras_longformer.bench.ours import inputs


def keras_mha(config, length, mode):
    import keras
    import tensorflow as tf

    layer = keras.layers.MultiHeadAttention(
        config["heads"],
        config["hidden"] // config["heads"],
        sliding_window=2 * config["window"] + 1,
    )
    hidden_states, _ = inputs(config, length)
    x = tf.constant(hidden_states)
    layer(x[:, :1], x[:, :1])  # build the weights outside the timed step
    if mode == "forward":
        return tf.function(lambda: layer(x, x)), None

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, x))
        return tape.gradient(loss, [x] + layer.trainable_variables)

    return step, None


def hf_torch(config, length, mode):
    import torch
    from transformers import LongformerConfig
    from transformers.models.longformer import modeling_longformer

    hf_config = LongformerConfig(
        hidden_size=config["hidden"],
        num_attention_heads=config["heads"],
        attention_window=[2 * config["window"]],
        attention_probs_dropout_prob=0.0,
    )
    layer = modeling_longformer.LongformerSelfAttention(hf_config, layer_id=0).eval()
    hidden_states, global_mask = inputs(config, length)
    hidden = torch.from_numpy(hidden_states)
    # Hugging Face's layer reads one float mask: +10000 global, 0 local,
    # -10000 padded.
    mask = torch.from_numpy(global_mask.astype("float32") * 10000.0)
    arguments = dict(
        attention_mask=mask,
        is_index_masked=mask < 0,
        is_index_global_attn=mask > 0,
        is_global_attn=bool(global_mask.any()),
    )
    if mode == "forward":

        def step():
            with torch.no_grad():
                return layer(hidden, **arguments)[0]

        return step, None
    hidden.requires_grad_(True)

    def step():
        layer.zero_grad(set_to_none=True)
        hidden.grad = None
        layer(hidden, **arguments)[0].sum().backward()
        return hidden.grad

    return step, None


def export_layer(config, path, verify_length):
    """Exports our float32 layer (hidden states and global mask in) to `path`,
    verified against Keras by `export_onnx` at `verify_length`."""
    import keras

    from keras_longformer.bench.ours import build_layer
    from keras_longformer.export import export_onnx

    hidden_states = keras.Input((None, config["hidden"]), name="hidden_states")
    global_mask = keras.Input((None,), dtype="bool", name="global_mask")
    layer = build_layer(config, "float32", keras.config.backend())
    outputs = layer(hidden_states, global_mask=global_mask)
    model = keras.Model(
        {"hidden_states": hidden_states, "global_mask": global_mask}, outputs
    )
    x, mask = inputs(config, min(verify_length, 64))
    model({"hidden_states": x, "global_mask": mask})
    report = export_onnx(model, path, lengths=[verify_length], overwrite=True)
    return report.max_abs_error


def onnxruntime_forward(config, length, onnx_path):
    """Returns `(call, sync, provider)`."""
    from keras_longformer.export import onnx_session

    session = onnx_session(onnx_path, provider="auto")
    hidden_states, global_mask = inputs(config, length)
    feeds = {"hidden_states": hidden_states, "global_mask": global_mask}
    names = {value.name for value in session.get_inputs()}
    feeds = {name: np.asarray(value) for name, value in feeds.items() if name in names}
    return (lambda: session.run(None, feeds)), None, session.get_providers()[0]
