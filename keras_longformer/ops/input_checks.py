"""Checks of the op's inputs that name the argument, before any work.

Shapes are checked where they are static; values (mask contents) where
they are concrete (numpy data, eager tensors), never inside a trace.
"""

import math

import keras
import numpy as np

from keras_longformer.ops.global_tokens import concrete_value


def check_scale(scale):
    """`None`, or a finite number > 0; returned as a float (or `None`)."""
    if scale is None:
        return None
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.number)):
        raise ValueError(f"`scale` must be a number > 0. Received: scale={scale!r}")
    if not math.isfinite(float(scale)) or float(scale) <= 0:
        raise ValueError(f"`scale` must be a finite number > 0. Received: scale={scale!r}")
    return float(scale)


def check_same_dtype(named_tensors, query):
    """Every tensor of `{name: tensor}` has the dtype of `query`."""
    expected = keras.backend.standardize_dtype(query.dtype)
    for name, tensor in named_tensors.items():
        if tensor is None:
            continue
        dtype = keras.backend.standardize_dtype(tensor.dtype)
        if dtype != expected:
            raise ValueError(
                f"`{name}` must have the dtype of `query` ({expected}). "
                f"Received: {name}.dtype={dtype}"
            )


def check_not_empty(query):
    """A sequence of at least one token (when the length is static)."""
    length = query.shape[1] if len(query.shape) > 1 else None
    if length == 0:
        raise ValueError(
            "The sequence must have at least one token. "
            f"Received: query.shape={tuple(query.shape)}"
        )


def check_mask_values(name, mask):
    """A concrete float mask holds only 0 and 1.

    Bool and integer masks need no look (non-zero integers are true); a
    float mask of 0.5 or NaN is a mistake worth naming, not a soft mask.
    """
    if mask is None:
        return
    dtype = str(mask.dtype if hasattr(mask, "dtype") else np.asarray(mask).dtype)
    if "float" not in dtype:
        return
    values = concrete_value(mask)
    if values is None:
        return
    bad = (values != 0) & (values != 1)
    if np.any(bad):
        raise ValueError(
            f"`{name}` must be bool or hold only 0 and 1. "
            f"Received: {name} with the value {values[bad].flat[0].item()!r}"
        )
