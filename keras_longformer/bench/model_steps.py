"""Training steps of a whole model, ours and Hugging Face's, as timed callables.

One step is what `model.fit` does per batch: forward, backward and an AdamW
update of every weight, in training mode (dropout on). Both models are the
same network (RoBERTa with Longformer attention, `config["layers"]` layers)
with the same loss, the mean square of the last hidden states, so the step
measures the encoder and not a task head.

- Ours: a `LongformerBackbone` (with `gradient_checkpointing` as asked)
  compiled with AdamW and trained by `train_on_batch`, the path `fit`
  takes, on the process's Keras backend with its default compilation.
- Hugging Face: `LongformerModel` in train mode with `torch.optim.AdamW`
  (`gradient_checkpointing_enable()` as asked), eager PyTorch as its
  users run it; `attention_window` is `2w`, its window being two-sided.

Each builder returns `(call, sync)` like `keras_longformer.bench.ours.ours`.
"""

import numpy as np

VOCABULARY = 50265  # RoBERTa's: the embedding table's update is part of the step


def model_inputs(config, length, seed=0):
    """`(token_ids, global_mask)`: `[B, T]` ids (no padding) and the first
    `num_global` tokens global."""
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(3, VOCABULARY, size=(config["batch"], length), dtype="int32")
    global_mask = np.zeros((config["batch"], length), bool)
    global_mask[:, : config["num_global"]] = True
    return token_ids, global_mask


def ours_training_step(config, length, checkpointing):
    import keras

    from keras_longformer.models import LongformerBackbone

    extra = {}
    if keras.config.backend() == "jax":
        # JAX compiles static shapes: the number of global tokens needs a bound.
        extra["max_global_tokens"] = max(config["num_global"], 1)
    keras.utils.set_random_seed(0)
    backbone = LongformerBackbone(
        vocabulary_size=VOCABULARY,
        num_layers=config["layers"],
        num_heads=config["heads"],
        hidden_dim=config["hidden"],
        intermediate_dim=4 * config["hidden"],
        window=config["window"],
        max_sequence_length=length,
        gradient_checkpointing=checkpointing,
        **extra,
    )
    model = keras.Model(backbone.input, backbone.output["sequence_output"])
    model.compile(optimizer=keras.optimizers.AdamW(1e-5), loss="mean_squared_error")
    token_ids, global_mask = model_inputs(config, length)
    x = {
        "token_ids": token_ids,
        "padding_mask": np.ones_like(token_ids),
        "global_mask": global_mask,
    }
    y = np.zeros((config["batch"], length, config["hidden"]), "float32")
    # `train_on_batch` returns the loss as a Python float: the step is done.
    return lambda: model.train_on_batch(x, y), None


def hf_training_step(config, length, checkpointing):
    import torch
    from transformers import LongformerConfig
    from transformers import LongformerModel

    torch.manual_seed(0)
    hf_config = LongformerConfig(
        vocab_size=VOCABULARY,
        num_hidden_layers=config["layers"],
        num_attention_heads=config["heads"],
        hidden_size=config["hidden"],
        intermediate_size=4 * config["hidden"],
        attention_window=[2 * config["window"]] * config["layers"],
        # RoBERTa positions start after the padding id (1): two rows more.
        max_position_embeddings=length + 2,
    )
    model = LongformerModel(hf_config, add_pooling_layer=True).train()
    if checkpointing:
        model.gradient_checkpointing_enable()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    token_ids, global_mask = model_inputs(config, length)
    token_ids = torch.from_numpy(token_ids.astype("int64"))
    global_mask = torch.from_numpy(global_mask.astype("int64"))
    attention_mask = torch.ones_like(token_ids)

    def step():
        optimizer.zero_grad(set_to_none=True)
        hidden = model(
            input_ids=token_ids, attention_mask=attention_mask, global_attention_mask=global_mask
        ).last_hidden_state
        loss = hidden.square().mean()
        loss.backward()
        optimizer.step()
        return float(loss)

    return step, None


def training_step(path, config, length):
    """The timed step of one model path (`model_paths.MODEL_PATHS`)."""
    if path.family == "ours":
        return ours_training_step(config, length, path.checkpointing)
    return hf_training_step(config, length, path.checkpointing)
