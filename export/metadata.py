"""The `keras_longformer.*` metadata of an exported file (what `check` and serving need)."""

import contextlib
import json

PREFIX = "keras_longformer."


def set_metadata(model_proto, info, **extra):
    """Writes the model's vocabulary size, pad id, maximum length and
    windows (and `extra` key/values) into `model_proto`'s metadata."""
    import keras_longformer

    values = {
        "version": keras_longformer.__version__,
        "vocabulary_size": info.vocabulary_size,
        "pad_token_id": info.pad_token_id,
        "max_sequence_length": info.max_sequence_length,
        "windows": json.dumps(info.windows),
        **extra,
    }
    existing = {prop.key: prop for prop in model_proto.metadata_props}
    for key, value in values.items():
        if value is None:
            continue
        prop = existing.get(PREFIX + key)
        if prop is None:
            prop = model_proto.metadata_props.add()
            prop.key = PREFIX + key
        prop.value = str(value)
    model_proto.producer_name = "keras_longformer"
    model_proto.doc_string = "exported by keras_longformer.export.export_onnx"


def read_metadata(model_proto_or_session):
    """The `keras_longformer.*` metadata of an exported file, as a dict.

    Args:
        model_proto_or_session: an `onnx.ModelProto` or an
            `onnxruntime.InferenceSession`.
    """
    if hasattr(model_proto_or_session, "get_modelmeta"):
        props = model_proto_or_session.get_modelmeta().custom_metadata_map
    else:
        props = {p.key: p.value for p in model_proto_or_session.metadata_props}
    result = {}
    for key, value in props.items():
        if key.startswith(PREFIX):
            key = key[len(PREFIX):]
            with contextlib.suppress(ValueError):
                value = json.loads(value)
            result[key] = value
    return result
