"""Hugging Face LED checkpoints (`LEDModel`, `LEDForConditionalGeneration`) into `LEDBackbone`.

The same checked loader as `from_huggingface`: the config is read and
checked, then every key the Keras model needs is found and every key of
the checkpoint is used, before any weight is read; weights are then read
one at a time from the memory-mapped file, each shape checked.
"""

import numpy as np

from keras_longformer.convert.checkpoint_tensors import load_state_dict
from keras_longformer.convert.huggingface import assign_rows
from keras_longformer.convert.huggingface_config import read_config
from keras_longformer.convert.weight_table import _identity
from keras_longformer.convert.weight_table import _reshape
from keras_longformer.convert.weight_table import _transpose
from keras_longformer.convert.weight_table import _transpose_reshape

# Keys of LEDForConditionalGeneration outside the backbone: the logits' bias
# (read by the seq2seq task, not the backbone).
HEAD_KEYS = ("final_logits_bias", "lm_head.weight")
# LEDConfig's defaults (transformers 5) for keys a config.json may leave out.
LED_DEFAULTS = dict(dropout=0.1, attention_dropout=0.0, activation_function="gelu",
                    max_encoder_position_embeddings=16384, max_decoder_position_embeddings=1024)


def symmetric_setting(hf_config, encoder_key, decoder_key):
    value, other = hf_config.get(encoder_key), hf_config.get(decoder_key, hf_config.get(encoder_key))
    if value is None:
        raise ValueError(f"An LED config.json must give `{encoder_key}`. Received keys: "
                         + ", ".join(sorted(hf_config)))
    if value != other:
        raise ValueError(
            f"LEDBackbone has as many decoder as encoder layers, heads and feed-forward units. "
            f"Received: {encoder_key}={value!r}, {decoder_key}={other!r}"
        )
    return value


def led_config_from_huggingface(hf_config):
    """`LEDBackbone` kwargs from a Hugging Face `LEDConfig` dict (checked)."""
    if hf_config.get("model_type") != "led":
        raise ValueError(
            "Expected an LED config (model_type='led'); a BART checkpoint is converted by "
            f"`convert_to_long`. Received: model_type={hf_config.get('model_type')!r}"
        )
    setting = {**LED_DEFAULTS, **hf_config}
    if setting["activation_function"] != "gelu":
        raise ValueError("Only the exact GELU feed-forward (activation_function='gelu') is "
                         f"supported. Received: activation_function={setting['activation_function']!r}")
    num_layers = symmetric_setting(hf_config, "encoder_layers", "decoder_layers")
    spans = setting.get("attention_window", 512)
    spans = [spans] * num_layers if isinstance(spans, int) else list(spans)
    if len(spans) != num_layers or any(not isinstance(s, int) or s < 0 or s % 2 for s in spans):
        raise ValueError(
            f"`attention_window` must be an even int >= 0 or a list of encoder_layers={num_layers} "
            f"of them. Received: attention_window={setting.get('attention_window')!r}"
        )
    windows = [s // 2 for s in spans]
    return dict(
        vocabulary_size=hf_config["vocab_size"],
        num_layers=num_layers,
        num_heads=symmetric_setting(hf_config, "encoder_attention_heads", "decoder_attention_heads"),
        hidden_dim=hf_config["d_model"],
        intermediate_dim=symmetric_setting(hf_config, "encoder_ffn_dim", "decoder_ffn_dim"),
        window=windows[0] if len(set(windows)) == 1 else windows,
        max_encoder_sequence_length=setting["max_encoder_position_embeddings"],
        max_decoder_sequence_length=setting["max_decoder_position_embeddings"],
        dropout=float(setting["dropout"]),
        attention_dropout=float(setting["attention_dropout"]),
    )


def _attention_rows(add, attention, key):
    """keras-hub `CachedMultiHeadAttention` <- BART's q/k/v/out projections."""
    for dense, name in ((attention.query_dense, "q_proj"), (attention.key_dense, "k_proj"),
                        (attention.value_dense, "v_proj")):
        add(dense.kernel, f"{key}.{name}.weight", _transpose_reshape)
        add(dense.bias, f"{key}.{name}.bias", _reshape)
    add(attention.output_dense.kernel, f"{key}.out_proj.weight", _transpose_reshape)
    add(attention.output_dense.bias, f"{key}.out_proj.bias")


def _norm_rows(add, norm, key):
    add(norm.gamma, f"{key}.weight")
    add(norm.beta, f"{key}.bias")


def led_weight_table(backbone, prefix=""):
    """`(Keras variable, HF key, transform)` rows of an `LEDBackbone`."""
    table = []

    def add(variable, key, transform=_identity):
        table.append((variable, prefix + key, transform))

    add(backbone.token_embedding.embeddings, "shared.weight")
    for part in ("encoder", "decoder"):
        add(getattr(backbone, f"{part}_position_embedding").position_embeddings,
            f"{part}.embed_positions.weight")
        _norm_rows(add, getattr(backbone, f"{part}_embeddings_layer_norm"), f"{part}.layernorm_embedding")
    for i, layer in enumerate(backbone.encoder_layers):
        key, attention = f"encoder.layers.{i}", layer.self_attention
        for dense, name in (
            (attention._query_dense, "query"), (attention._key_dense, "key"),
            (attention._value_dense, "value"), (attention._global_query_dense, "query_global"),
            (attention._global_key_dense, "key_global"), (attention._global_value_dense, "value_global"),
        ):
            add(dense.kernel, f"{key}.self_attn.longformer_self_attn.{name}.weight", _transpose_reshape)
            add(dense.bias, f"{key}.self_attn.longformer_self_attn.{name}.bias", _reshape)
        add(attention._output_dense.kernel, f"{key}.self_attn.output.weight", _transpose_reshape)
        add(attention._output_dense.bias, f"{key}.self_attn.output.bias")
        _norm_rows(add, layer.attention_layer_norm, f"{key}.self_attn_layer_norm")
        add(layer.intermediate_dense.kernel, f"{key}.fc1.weight", _transpose)
        add(layer.intermediate_dense.bias, f"{key}.fc1.bias")
        add(layer.output_dense.kernel, f"{key}.fc2.weight", _transpose)
        add(layer.output_dense.bias, f"{key}.fc2.bias")
        _norm_rows(add, layer.output_layer_norm, f"{key}.final_layer_norm")
    for i, layer in enumerate(backbone.decoder_layers):
        key = f"decoder.layers.{i}"
        _attention_rows(add, layer._self_attention_layer, f"{key}.self_attn")
        _norm_rows(add, layer._self_attention_layer_norm, f"{key}.self_attn_layer_norm")
        _attention_rows(add, layer._cross_attention_layer, f"{key}.encoder_attn")
        _norm_rows(add, layer._cross_attention_layer_norm, f"{key}.encoder_attn_layer_norm")
        add(layer._feedforward_intermediate_dense.kernel, f"{key}.fc1.weight", _transpose)
        add(layer._feedforward_intermediate_dense.bias, f"{key}.fc1.bias")
        add(layer._feedforward_output_dense.kernel, f"{key}.fc2.weight", _transpose)
        add(layer._feedforward_output_dense.bias, f"{key}.fc2.bias")
        _norm_rows(add, layer._feedforward_layer_norm, f"{key}.final_layer_norm")
    return table


def _prefix(keys):
    """`led.` for `LEDFor*` checkpoints, none for `LEDModel`."""
    return "led." if "led.shared.weight" in keys else ""


def _task(task, hf_config):
    if task == "auto":
        architectures = hf_config.get("architectures") or []
        task = "seq2seq_lm" if "LEDForConditionalGeneration" in architectures else "backbone"
    if task not in ("backbone", "seq2seq_lm"):
        raise ValueError(f'`task` must be "backbone", "seq2seq_lm" or "auto". Received: task={task!r}')
    return task


def _check_keys(table, keys, prefix, task, path):
    """Every key the table needs is there and every key is used (a
    backbone leaves out what is outside `prefix`: a task's head)."""
    for variable, key, _ in table:
        if key not in keys:
            raise ValueError(f"Missing key `{key}` in the checkpoint at {path} (needed for Keras "
                             f"weight `{variable.path}`).")
    used = {key for _, key, _ in table}
    used |= {prefix + "encoder.embed_tokens.weight", prefix + "decoder.embed_tokens.weight"}
    if task == "seq2seq_lm":
        used |= set(HEAD_KEYS)
    unexpected = sorted(
        key for key in keys - used if task == "seq2seq_lm" or not prefix or key.startswith(prefix)
    )
    if unexpected:
        raise ValueError(f"Unexpected keys in the checkpoint at {path}: "
                         + ", ".join(f"`{key}`" for key in unexpected))


def led_from_huggingface(path, *, task="backbone", dtype=None):
    """A Keras LED with the weights of a local Hugging Face LED checkpoint.

    Args:
        path: directory of `config.json` and `model.safetensors` (or
            `pytorch_model.bin`), as `save_pretrained` writes for `LEDModel`
            or `LEDForConditionalGeneration`.
        task: "backbone" (an `LEDBackbone`; a task checkpoint's head is
            left out), "seq2seq_lm" (an `LEDSeq2SeqLM`, with
            `final_logits_bias`, and an `LEDSeq2SeqLMPreprocessor` when the
            directory has tokenizer files), or "auto" (from `architectures`).
        dtype: optional dtype policy of the Keras model.

    Returns:
        The Keras model, in inference mode (call it with `training=False`).

    Raises:
        FileNotFoundError: no `config.json` or weight file.
        ValueError: a config of another model or one LEDBackbone cannot
            hold, a missing or unexpected key, an untied `lm_head`, a shape
            mismatch: each named.
    """
    from keras_longformer.models.led_backbone import LEDBackbone
    from keras_longformer.models.led_seq2seq_lm import LEDSeq2SeqLM

    hf_config = read_config(path)
    kwargs = led_config_from_huggingface(hf_config)
    task = _task(task, hf_config)
    state = load_state_dict(path)
    keys = set(state)
    prefix = _prefix(keys)
    backbone = LEDBackbone(**kwargs, dtype=dtype)
    table = led_weight_table(backbone, prefix)
    _check_keys(table, keys, prefix, task, path)
    if task == "backbone":
        assign_rows(table, state, path)
        return backbone
    if "lm_head.weight" in keys and not np.array_equal(state["lm_head.weight"], state[prefix + "shared.weight"]):
        raise ValueError(f"`lm_head.weight` is not tied to `{prefix}shared.weight` in the checkpoint at "
                         f"{path}; LEDSeq2SeqLM ties its logits to the token embeddings.")
    model = LEDSeq2SeqLM(backbone)
    if "final_logits_bias" in keys:
        table.append((model.decoder.bias, "final_logits_bias", lambda array, _: array.reshape(-1)))
    assign_rows(table, state, path)
    # The directory's tokenizer files, if any, give the task its preprocessor.
    from keras_longformer.models.huggingface_preprocessing import attach_huggingface_preprocessor

    return attach_huggingface_preprocessor(model, path)
