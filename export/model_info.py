"""What the verification sweep needs to know about a model: windows, vocabulary, pad id, length."""

import dataclasses

_PAD_KEYS = ("pad_token_id", "padding_idx", "pad_id", "padding_id")
_VOCAB_KEYS = ("vocabulary_size", "vocab_size")
# A Longformer's, an LED's encoder, and keras-hub's PositionEmbedding (an
# LED encoder exported on its own holds only that).
_MAX_LENGTH_KEYS = ("max_sequence_length", "max_encoder_sequence_length", "sequence_length")


@dataclasses.dataclass
class ModelInfo:
    """What the sweep needs to know about a model, inferred from its layers."""

    windows: list  # [(window, dilation), ...] of every LongformerSelfAttention
    vocabulary_size: int = None
    pad_token_id: int = None
    max_sequence_length: int = None


def describe_model(model):
    """Windows, vocabulary size, pad id and maximum length of `model`."""
    from keras_longformer.layers import LongformerSelfAttention

    layers = list(_all_layers(model))
    windows = []
    for layer in layers:
        if isinstance(layer, LongformerSelfAttention):
            dilations = layer.dilation if isinstance(layer.dilation, (list, tuple)) else [layer.dilation]
            for dilation in sorted(set(int(d) for d in dilations)):
                if (layer.window, dilation) not in windows:
                    windows.append((layer.window, dilation))
    configs = [_safe_config(model)] + [_safe_config(layer) for layer in layers]
    return ModelInfo(
        windows=windows,
        vocabulary_size=_vocabulary_size(model, layers, configs),
        pad_token_id=_first_int(configs, _PAD_KEYS),
        max_sequence_length=_first_int(configs, _MAX_LENGTH_KEYS),
    )


def _all_layers(model):
    try:
        return model._flatten_layers(include_self=False, recursive=True)
    except AttributeError:  # not a Keras layer tree
        return []


def _safe_config(layer):
    try:
        config = layer.get_config()
    except Exception:  # subclassed models may not implement get_config
        return {}
    return config if isinstance(config, dict) else {}


def _first_int(configs, keys):
    for config in configs:
        for key in keys:
            value = config.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    return None


def _vocabulary_size(model, layers, configs):
    import keras

    from_config = _first_int(configs, _VOCAB_KEYS)
    if from_config:
        return from_config
    embeddings = [layer for layer in layers if isinstance(layer, keras.layers.Embedding)]
    named = [
        layer
        for layer in embeddings
        if any(word in layer.name.lower() for word in ("token", "word"))
        and "type" not in layer.name.lower()
    ]
    if named:
        return min(int(layer.input_dim) for layer in named)
    sizes = [int(layer.input_dim) for layer in embeddings if layer.input_dim >= 3]
    # Ids below the smallest embedding are in range whichever one reads them.
    return min(sizes) if sizes else None
