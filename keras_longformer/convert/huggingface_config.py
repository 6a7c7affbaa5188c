"""Hugging Face `config.json` -> `LongformerBackbone` arguments.

Pure functions on a dict (plus one reader of the file): no weight, no
Keras. A key a checkpoint leaves out falls back to the default of
transformers' own `LongformerConfig` (itself RoBERTa's), so a checkpoint
loads here as it loads in transformers; only the keys that set the size
of the network are required, since a default there could only end in a
shape mismatch far from its cause.
"""

import json
import os

# transformers' `LongformerConfig` defaults (transformers 5.24,
# configuration_longformer.py), for the keys read here.
HF_DEFAULTS = {
    "model_type": "longformer",
    "attention_window": 512,
    "pad_token_id": 1,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-12,
}
# The keys that decide the shape of some weight.
REQUIRED_KEYS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
)


def read_config(path):
    """The `config.json` of the checkpoint directory `path`, as a dict.

    Raises:
        FileNotFoundError: there is no `config.json`.
        ValueError: it is not a JSON object (message names the file).
    """
    config_file = os.path.join(path, "config.json")
    if not os.path.isfile(config_file):
        raise FileNotFoundError(f"No config.json in {path}")
    try:
        with open(config_file, encoding="utf-8") as file:
            hf_config = json.load(file)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{config_file} is not valid JSON: {error}") from None
    if not isinstance(hf_config, dict):
        raise ValueError(
            f"{config_file} must hold a JSON object of config keys. Received: "
            f"a JSON {type(hf_config).__name__}"
        )
    return hf_config


def checkpoint_model_type(path):
    """The `model_type` of the checkpoint directory `path`, or None where its
    `config.json` is missing or unreadable (the converter then names why)."""
    try:
        return read_config(path).get("model_type")
    except (OSError, ValueError):
        return None


def _setting(hf_config, key):
    return hf_config.get(key, HF_DEFAULTS.get(key))


def _int_setting(hf_config, key, minimum):
    value = hf_config[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{key}` must be an int >= {minimum}. Received: {key}={value!r}")
    return value


def _rate_setting(hf_config, key):
    value = _setting(hf_config, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"`{key}` must be a float in [0, 1). Received: {key}={value!r}")
    return float(value)


def _check_supported(hf_config):
    model_type = _setting(hf_config, "model_type")
    if model_type != "longformer":
        raise ValueError(
            f"Expected a Longformer config (model_type='longformer'). Received: "
            f"model_type={model_type!r}"
        )
    missing = [key for key in REQUIRED_KEYS if key not in hf_config]
    if missing:
        raise ValueError(
            "A Longformer config.json must give the size of the network; missing "
            f"key{'s' if len(missing) > 1 else ''}: {', '.join(missing)}. Received "
            f"keys: {', '.join(sorted(hf_config)) or 'none'}"
        )
    activation = _setting(hf_config, "hidden_act")
    if activation != "gelu":
        raise ValueError(
            "Only the exact GELU feed-forward (hidden_act='gelu') is supported. "
            f"Received: hidden_act={activation!r}"
        )
    # Written by transformers 4 (`null` or "absolute"); version 5 has no such key.
    position_type = hf_config.get("position_embedding_type") or "absolute"
    if position_type != "absolute":
        raise ValueError(
            "Only absolute position embeddings are supported. Received: "
            f"position_embedding_type={position_type!r}"
        )


def _windows(hf_config, num_layers):
    """Hugging Face's two-sided spans -> one-sided windows, one per layer."""
    attention_window = _setting(hf_config, "attention_window")
    spans = (
        [attention_window] * num_layers
        if isinstance(attention_window, int) and not isinstance(attention_window, bool)
        else list(attention_window) if isinstance(attention_window, list) else None
    )
    if (
        spans is None
        or len(spans) != num_layers
        or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 or s % 2 for s in spans)
    ):
        raise ValueError(
            "`attention_window` must be an even int >= 0, or a list of "
            f"num_hidden_layers={num_layers} of them. Received: "
            f"attention_window={attention_window!r}"
        )
    windows = [s // 2 for s in spans]
    return windows[0] if len(set(windows)) == 1 else windows


def backbone_config_from_huggingface(hf_config):
    """Maps a Hugging Face `LongformerConfig` dict to `LongformerBackbone` kwargs.

    Pure: no file, no weight. Hugging Face's `attention_window` is the
    two-sided total span, so `attention_window=512` becomes `window=256`;
    `max_position_embeddings` counts the `pad_token_id + 1` reserved
    positions of RoBERTa, so 4098 becomes `max_sequence_length=4096`.
    Keys left out take transformers' `LongformerConfig` defaults
    (`HF_DEFAULTS`: `layer_norm_eps=1e-12`, `type_vocab_size=2`, ...); the
    keys that size the network (`REQUIRED_KEYS`) must be given.

    Args:
        hf_config: dict, the content of `config.json`.

    Returns:
        dict of `LongformerBackbone` arguments.

    Raises:
        ValueError: naming the key and echoing its value, for a config
            that is not Longformer's, lacks a required key, or holds a
            value the backbone cannot take.

    Example:

    >>> kwargs = backbone_config_from_huggingface({
    ...     "model_type": "longformer", "vocab_size": 50265, "hidden_size": 768,
    ...     "num_hidden_layers": 12, "num_attention_heads": 12,
    ...     "intermediate_size": 3072, "max_position_embeddings": 4098,
    ...     "attention_window": 512})
    >>> kwargs["window"], kwargs["max_sequence_length"]
    (256, 4096)
    """
    _check_supported(hf_config)
    sizes = {key: _int_setting(hf_config, key, 1) for key in REQUIRED_KEYS}
    if sizes["hidden_size"] % sizes["num_attention_heads"]:
        raise ValueError(
            "`hidden_size` must be divisible by `num_attention_heads`. Received: "
            f"hidden_size={sizes['hidden_size']}, "
            f"num_attention_heads={sizes['num_attention_heads']}"
        )
    pad_token_id = _setting(hf_config, "pad_token_id")
    if isinstance(pad_token_id, bool) or not isinstance(pad_token_id, int) or pad_token_id < 0:
        raise ValueError(
            f"`pad_token_id` must be an int >= 0. Received: pad_token_id={pad_token_id!r}"
        )
    max_positions = sizes["max_position_embeddings"]
    if max_positions < pad_token_id + 2:
        raise ValueError(
            "`max_position_embeddings` is too small: RoBERTa positions start at "
            "pad_token_id + 1, so it must be at least pad_token_id + 2 for one "
            f"token. Received: max_position_embeddings={max_positions}, "
            f"pad_token_id={pad_token_id}"
        )
    type_vocab_size = _setting(hf_config, "type_vocab_size")
    if isinstance(type_vocab_size, bool) or not isinstance(type_vocab_size, int) or type_vocab_size < 1:
        raise ValueError(
            f"`type_vocab_size` must be an int >= 1. Received: type_vocab_size={type_vocab_size!r}"
        )
    epsilon = _setting(hf_config, "layer_norm_eps")
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not epsilon > 0:
        raise ValueError(f"`layer_norm_eps` must be a float > 0. Received: layer_norm_eps={epsilon!r}")
    return {
        "vocabulary_size": sizes["vocab_size"],
        "num_layers": sizes["num_hidden_layers"],
        "num_heads": sizes["num_attention_heads"],
        "hidden_dim": sizes["hidden_size"],
        "intermediate_dim": sizes["intermediate_size"],
        "window": _windows(hf_config, sizes["num_hidden_layers"]),
        "max_sequence_length": max_positions - pad_token_id - 1,
        "type_vocab_size": type_vocab_size,
        "pad_token_id": pad_token_id,
        "dropout": _rate_setting(hf_config, "hidden_dropout_prob"),
        "attention_dropout": _rate_setting(hf_config, "attention_probs_dropout_prob"),
        "layer_norm_epsilon": float(epsilon),
    }


def task_config_from_huggingface(hf_config):
    """`num_labels` and the head's dropout, with transformers' fallbacks.

    Returns:
        dict with `num_classes` (`num_labels`, else the size of `id2label`,
        else 2) and `dropout` (`classifier_dropout`, else
        `hidden_dropout_prob`, as `LongformerClassificationHead` does).
    """
    dropout = hf_config.get("classifier_dropout")
    key = "classifier_dropout"
    if dropout is None:
        key = "hidden_dropout_prob"
    num_labels = hf_config.get("num_labels") or len(hf_config.get("id2label") or {}) or 2
    if isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 1:
        raise ValueError(f"`num_labels` must be an int >= 1. Received: num_labels={num_labels!r}")
    return {"num_classes": num_labels, "dropout": _rate_setting(hf_config, key)}
