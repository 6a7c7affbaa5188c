"""Hugging Face Longformer checkpoints -> Keras, with exact parity.

Three pieces, each small enough to read at once:
- `backbone_config_from_huggingface`: one pure function from Hugging Face's
  `config.json` dict to `LongformerBackbone` arguments;
- `load_state_dict`: safe loading only (safetensors without torch, a
  legacy `.bin` only through `torch.load(weights_only=True)`);
- `weight_table`: one list of `(Keras variable, HF key, transform)`, which
  `from_huggingface` walks, checking every key and shape.
"""

import json
import os
import struct
import warnings

import numpy as np

# Hugging Face class name -> the `task` of `from_huggingface`.
ARCHITECTURES = {
    "LongformerModel": "backbone",
    "LongformerForMaskedLM": "masked_lm",
    "LongformerForSequenceClassification": "classifier",
    "LongformerForTokenClassification": "token_classifier",
    "LongformerForQuestionAnswering": "question_answering",
}
TASKS = ("backbone", "auto") + tuple(sorted(set(ARCHITECTURES.values()) - {"backbone"}))
# Buffers some checkpoints hold that are not weights.
IGNORED_KEYS = ("embeddings.position_ids",)
_PREFIX = "longformer."


def backbone_config_from_huggingface(hf_config):
    """Maps a Hugging Face `LongformerConfig` dict to `LongformerBackbone` kwargs.

    Pure: no file, no weight. Hugging Face's `attention_window` is the
    two-sided total span, so `attention_window=512` becomes `window=256`;
    `max_position_embeddings` counts the `pad_token_id + 1` reserved
    positions of RoBERTa, so 4098 becomes `max_sequence_length=4096`.

    Args:
        hf_config: dict, the content of `config.json`.

    Returns:
        dict of `LongformerBackbone` arguments.
    """
    model_type = hf_config.get("model_type", "longformer")
    if model_type != "longformer":
        raise ValueError(
            f"Expected a Longformer config (model_type='longformer'). Received: "
            f"model_type={model_type!r}"
        )
    activation = hf_config.get("hidden_act", "gelu")
    if activation != "gelu":
        raise ValueError(
            "Only the exact GELU feed-forward (hidden_act='gelu') is supported. "
            f"Received: hidden_act={activation!r}"
        )
    position_type = hf_config.get("position_embedding_type", "absolute")
    if position_type != "absolute":
        raise ValueError(
            "Only absolute position embeddings are supported. Received: "
            f"position_embedding_type={position_type!r}"
        )
    num_layers = hf_config["num_hidden_layers"]
    attention_window = hf_config["attention_window"]
    spans = (
        [attention_window] * num_layers
        if isinstance(attention_window, int)
        else list(attention_window)
    )
    if len(spans) != num_layers or any(
        not isinstance(s, int) or s < 0 or s % 2 for s in spans
    ):
        raise ValueError(
            "`attention_window` must be an even int >= 0, or a list of "
            f"num_hidden_layers={num_layers} of them. Received: "
            f"attention_window={attention_window!r}"
        )
    windows = [s // 2 for s in spans]
    pad_token_id = hf_config.get("pad_token_id", 1)
    max_sequence_length = hf_config["max_position_embeddings"] - pad_token_id - 1
    if max_sequence_length < 1:
        raise ValueError(
            "`max_position_embeddings` must exceed pad_token_id + 1. Received: "
            f"max_position_embeddings={hf_config['max_position_embeddings']}, "
            f"pad_token_id={pad_token_id}"
        )
    return {
        "vocabulary_size": hf_config["vocab_size"],
        "num_layers": num_layers,
        "num_heads": hf_config["num_attention_heads"],
        "hidden_dim": hf_config["hidden_size"],
        "intermediate_dim": hf_config["intermediate_size"],
        "window": windows[0] if len(set(windows)) == 1 else windows,
        "max_sequence_length": max_sequence_length,
        "type_vocab_size": hf_config.get("type_vocab_size", 1),
        "pad_token_id": pad_token_id,
        "dropout": hf_config.get("hidden_dropout_prob", 0.1),
        "attention_dropout": hf_config.get("attention_probs_dropout_prob", 0.1),
        "layer_norm_epsilon": hf_config.get("layer_norm_eps", 1e-5),
    }


# === Safe loading ===


def _read_safetensors(path):
    from safetensors.numpy import load_file

    try:
        return load_file(path)
    except (TypeError, ValueError):
        # numpy has no bfloat16: read the raw file (the format is a JSON
        # header and flat little-endian buffers), widening BF16 to float32.
        return _read_safetensors_raw(path)


def _read_safetensors_raw(path):
    dtypes = {
        "F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4",
        "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?",
    }
    with open(path, "rb") as file:
        (header_size,) = struct.unpack("<Q", file.read(8))
        header = json.loads(file.read(header_size))
        data = file.read()
    tensors = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        start, end = info["data_offsets"]
        raw = data[start:end]
        if info["dtype"] == "BF16":
            bits = np.frombuffer(raw, "<u2").astype(np.uint32) << 16
            array = bits.view(np.float32)
        elif info["dtype"] in dtypes:
            array = np.frombuffer(raw, dtypes[info["dtype"]])
        else:
            raise ValueError(f"Unsupported dtype {info['dtype']} of `{key}` in {path}")
        tensors[key] = array.reshape(info["shape"]).copy()
    return tensors


def _read_torch_bin(path):
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"{path} is a PyTorch pickle, which needs torch to read safely "
            "(`torch.load(weights_only=True)`). Install torch (the CPU build: "
            "`pip install torch --index-url https://download.pytorch.org/whl/cpu`), "
            "or convert the checkpoint to `model.safetensors` where torch is "
            "installed."
        ) from None
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {
        key: (value.float() if value.dtype == torch.bfloat16 else value).numpy()
        for key, value in state.items()
    }


def load_state_dict(path):
    """Reads the weights of a Hugging Face checkpoint directory as numpy.

    Looks, in order, for `model.safetensors`, a sharded
    `model.safetensors.index.json`, `pytorch_model.bin` and a sharded
    `pytorch_model.bin.index.json`. Safetensors are read without torch; a
    `.bin` only with `torch.load(weights_only=True)`, which never unpickles
    arbitrary objects.

    Returns:
        dict of HF key -> numpy array.
    """
    candidates = [
        ("model.safetensors", _read_safetensors, False),
        ("model.safetensors.index.json", _read_safetensors, True),
        ("pytorch_model.bin", _read_torch_bin, False),
        ("pytorch_model.bin.index.json", _read_torch_bin, True),
    ]
    for name, reader, sharded in candidates:
        file = os.path.join(path, name)
        if not os.path.isfile(file):
            continue
        if not sharded:
            return reader(file)
        with open(file) as index:
            shards = sorted(set(json.load(index)["weight_map"].values()))
        state = {}
        for shard in shards:
            state.update(reader(os.path.join(path, shard)))
        return state
    raise FileNotFoundError(
        f"No weights in {path}: expected one of "
        + ", ".join(name for name, _, _ in candidates)
    )


# === The weight table ===


def _identity(array, variable):
    return array


def _transpose(array, variable):
    """torch `Linear.weight` `[out, in]` -> Keras `Dense.kernel` `[in, out]`."""
    return array.T


def _reshape(array, variable):
    """Flat heads `[N * H]` / `[D, N * H]` -> the EinsumDense shape."""
    return array.reshape(tuple(variable.shape))


def _transpose_reshape(array, variable):
    """`[N * H, D]` -> `[D, N, H]`, or `[D, N * H]` -> `[N, H, D]`."""
    return array.T.reshape(tuple(variable.shape))


def _backbone_table(backbone, prefix):
    table = []

    def add(variable, key, transform=_identity):
        table.append((variable, prefix + key, transform))

    embeddings = backbone.embeddings
    add(embeddings.token_embedding.embeddings, "embeddings.word_embeddings.weight")
    add(embeddings.position_embedding.embeddings, "embeddings.position_embeddings.weight")
    add(embeddings.token_type_embedding.embeddings, "embeddings.token_type_embeddings.weight")
    add(embeddings.layer_norm.gamma, "embeddings.LayerNorm.weight")
    add(embeddings.layer_norm.beta, "embeddings.LayerNorm.bias")
    for i, layer in enumerate(backbone.encoder_layers):
        attention = layer.self_attention
        hf = f"encoder.layer.{i}."
        for dense, name in (
            (attention._query_dense, "query"),
            (attention._key_dense, "key"),
            (attention._value_dense, "value"),
            (attention._global_query_dense, "query_global"),
            (attention._global_key_dense, "key_global"),
            (attention._global_value_dense, "value_global"),
        ):
            add(dense.kernel, f"{hf}attention.self.{name}.weight", _transpose_reshape)
            add(dense.bias, f"{hf}attention.self.{name}.bias", _reshape)
        add(attention._output_dense.kernel, f"{hf}attention.output.dense.weight", _transpose_reshape)
        add(attention._output_dense.bias, f"{hf}attention.output.dense.bias")
        add(layer.attention_layer_norm.gamma, f"{hf}attention.output.LayerNorm.weight")
        add(layer.attention_layer_norm.beta, f"{hf}attention.output.LayerNorm.bias")
        add(layer.intermediate_dense.kernel, f"{hf}intermediate.dense.weight", _transpose)
        add(layer.intermediate_dense.bias, f"{hf}intermediate.dense.bias")
        add(layer.output_dense.kernel, f"{hf}output.dense.weight", _transpose)
        add(layer.output_dense.bias, f"{hf}output.dense.bias")
        add(layer.output_layer_norm.gamma, f"{hf}output.LayerNorm.weight")
        add(layer.output_layer_norm.beta, f"{hf}output.LayerNorm.bias")
    return table


_POOLER_KEYS = ("pooler.dense.weight", "pooler.dense.bias")


def weight_table(model, task="backbone", prefix=""):
    """The `(Keras variable, HF key, transform)` rows of a model.

    Args:
        model: a `LongformerBackbone`, or the task model of `task`.
        task: one of "backbone", "masked_lm", "classifier",
            "token_classifier", "question_answering".
        prefix: prefix of the backbone's keys in the checkpoint
            ("longformer." for the `LongformerFor*` classes).

    Returns:
        list of `(variable, key, transform)`; `transform(array, variable)`
        returns the array to assign.
    """
    if task == "backbone":
        table = _backbone_table(model, prefix)
        pooler = model.pooler_dense
        table.append((pooler.kernel, prefix + _POOLER_KEYS[0], _transpose))
        table.append((pooler.bias, prefix + _POOLER_KEYS[1], _identity))
        return table
    table = _backbone_table(model.backbone, prefix)
    if task == "masked_lm":
        head = model.lm_head
        table += [
            (head.dense.kernel, "lm_head.dense.weight", _transpose),
            (head.dense.bias, "lm_head.dense.bias", _identity),
            (head.layer_norm.gamma, "lm_head.layer_norm.weight", _identity),
            (head.layer_norm.beta, "lm_head.layer_norm.bias", _identity),
            (head.bias, "lm_head.bias", _identity),
        ]
    elif task == "classifier":
        # RoBERTa's classification head is dense + tanh on the first token,
        # the network of the pooler: `classifier.dense` is the pooler here.
        pooler = model.backbone.pooler_dense
        table += [
            (pooler.kernel, "classifier.dense.weight", _transpose),
            (pooler.bias, "classifier.dense.bias", _identity),
            (model.output_dense.kernel, "classifier.out_proj.weight", _transpose),
            (model.output_dense.bias, "classifier.out_proj.bias", _identity),
        ]
    elif task == "token_classifier":
        table += [
            (model.output_dense.kernel, "classifier.weight", _transpose),
            (model.output_dense.bias, "classifier.bias", _identity),
        ]
    elif task == "question_answering":
        table += [
            (model.output_dense.kernel, "qa_outputs.weight", _transpose),
            (model.output_dense.bias, "qa_outputs.bias", _identity),
        ]
    else:
        raise ValueError(f"`task` must be one of {TASKS}. Received: task={task!r}")
    return table


# Tied copies a `LongformerForMaskedLM` checkpoint may hold: key -> the key
# it must equal.
_TIED_KEYS = {
    "lm_head.decoder.weight": _PREFIX + "embeddings.word_embeddings.weight",
    "lm_head.decoder.bias": "lm_head.bias",
}


def _task_from_architectures(hf_config):
    for architecture in hf_config.get("architectures") or []:
        if architecture in ARCHITECTURES:
            return ARCHITECTURES[architecture]
    return "backbone"


def _build_model(task, backbone_kwargs, hf_config, dtype):
    from keras_longformer import models

    backbone = models.LongformerBackbone(**backbone_kwargs, dtype=dtype)
    if task == "backbone":
        return backbone
    dropout = hf_config.get("classifier_dropout")
    if dropout is None:
        dropout = hf_config.get("hidden_dropout_prob", 0.1)
    num_labels = hf_config.get("num_labels") or len(hf_config.get("id2label") or {}) or 2
    if task == "masked_lm":
        return models.LongformerMaskedLM(backbone, dtype=dtype)
    if task == "classifier":
        return models.LongformerClassifier(
            backbone, num_classes=num_labels, dropout=dropout, dtype=dtype
        )
    if task == "token_classifier":
        return models.LongformerTokenClassifier(
            backbone, num_classes=num_labels, dropout=dropout, dtype=dtype
        )
    return models.LongformerQuestionAnswering(backbone, dtype=dtype)


def from_huggingface(path, *, task="backbone", dtype=None):
    """Loads a local Hugging Face Longformer checkpoint into Keras.

    `path` is a directory with `config.json` and `model.safetensors` (or a
    legacy `pytorch_model.bin`, read only with
    `torch.load(weights_only=True)`), as written by `save_pretrained` for
    `LongformerModel` or any `LongformerFor*` class. Nothing is downloaded.

    Every Keras weight must find its key with the expected shape, and every
    key of the converted part must be used: anything else is a `ValueError`
    naming the key. With `task="backbone"` the head of a `LongformerFor*`
    checkpoint is left out; those classes save no pooler, so the pooler
    keeps its random initialisation (with a warning).

    Args:
        path: directory of the checkpoint.
        task: "backbone" (default) returns a `LongformerBackbone`; "auto"
            builds the model of the checkpoint's class (from
            `architectures` in `config.json`); or one of "masked_lm"
            (`LongformerMaskedLM`), "classifier" (`LongformerClassifier`),
            "token_classifier" (`LongformerTokenClassifier`),
            "question_answering" (`LongformerQuestionAnswering`).
        dtype: optional dtype policy of the Keras model.

    Returns:
        The Keras model, weights in place, in inference mode (call it with
        `training=False`, the default, for Hugging Face's `eval()` outputs).

    Example:

    >>> backbone = from_huggingface("longformer-base-4096/")
    >>> backbone.window  # attention_window=512 in config.json
    256
    """
    if task not in TASKS:
        raise ValueError(f"`task` must be one of {TASKS}. Received: task={task!r}")
    config_file = os.path.join(path, "config.json")
    if not os.path.isfile(config_file):
        raise FileNotFoundError(f"No config.json in {path}")
    with open(config_file) as file:
        hf_config = json.load(file)
    backbone_kwargs = backbone_config_from_huggingface(hf_config)
    state = load_state_dict(path)
    state = {k: v for k, v in state.items() if k.removeprefix(_PREFIX) not in IGNORED_KEYS}
    prefixed = any(key.startswith(_PREFIX) for key in state)
    prefix = _PREFIX if prefixed else ""
    if task == "auto":
        task = _task_from_architectures(hf_config)
    if task != "backbone" and not prefixed:
        raise ValueError(
            f"task={task!r} needs a `LongformerFor*` checkpoint (keys under "
            f"'{_PREFIX}' plus the head), but {path} holds a bare LongformerModel."
        )

    model = _build_model(task, backbone_kwargs, hf_config, dtype)
    table = weight_table(model, task, prefix)
    used = set()
    missing_pooler = []
    for variable, key, transform in table:
        if key not in state:
            if task == "backbone" and key.removeprefix(prefix) in _POOLER_KEYS:
                missing_pooler.append(key)
                continue
            raise ValueError(
                f"Missing key `{key}` in the checkpoint at {path} (needed for "
                f"Keras weight `{variable.path}`)."
            )
        value = transform(np.asarray(state[key]), variable)
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(
                f"Shape mismatch for `{key}`: the checkpoint holds "
                f"{tuple(state[key].shape)}, which gives {tuple(value.shape)}, "
                f"but Keras weight `{variable.path}` is {tuple(variable.shape)}."
            )
        variable.assign(value.astype(variable.dtype))
        used.add(key)
    if missing_pooler:
        warnings.warn(
            f"The checkpoint at {path} has no pooler ({', '.join(missing_pooler)}), "
            "as `LongformerFor*` checkpoints: `pooled_output` is randomly "
            "initialised. `sequence_output` is exact.",
            stacklevel=2,
        )

    for key, target in _TIED_KEYS.items():
        if task == "masked_lm" and key in state:
            if target in state and not np.array_equal(state[key], state[target]):
                raise ValueError(
                    f"`{key}` is not tied to `{target}` in {path}; an untied "
                    "decoder is not supported."
                )
            used.add(key)
    unexpected = [
        key
        for key in state
        if key not in used and (task != "backbone" or key.startswith(prefix))
    ]
    if unexpected:
        raise ValueError(
            f"Unexpected key{'s' if len(unexpected) > 1 else ''} in the checkpoint "
            f"at {path}: " + ", ".join(f"`{k}`" for k in sorted(unexpected))
        )
    return model
