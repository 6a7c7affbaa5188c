"""The number of global tokens: data on TensorFlow and torch, bounded on JAX.

Global attention gathers the global tokens of each row into `G` slots. On
TensorFlow and torch `G` is the largest count of any row, read from the
data: no bound is needed and none is imposed unless the user sets one. JAX
compiles static shapes, so there `G` is a static bound, `max_global_tokens`
(default `DEFAULT_MAX_GLOBAL_TOKENS`), and the cost of global attention is
in proportion to that bound.

A row with more global tokens than the bound is never silently truncated:
wherever the mask's values are known (numpy data, an eager call, the
batches going into `fit`/`evaluate`/`predict`) it is a `ValueError` that
names the bound, raised before any work; inside a trace, where nothing can
be raised, the rows that overflow come out as NaN.
"""

import keras
import numpy as np

from keras_longformer.arguments import check_int

try:
    # Keras traces shapes by calling layers on placeholder tensors (ones on
    # torch) inside a symbolic scope; their values are not data.
    from keras.src.backend.common.symbolic_scope import in_symbolic_scope
except ImportError:  # pragma: no cover - tested against the pinned Keras
    def in_symbolic_scope():
        return False

# `<s>` plus a question of up to 64 tokens: what Hugging Face's question
# answering makes global.
DEFAULT_MAX_GLOBAL_TOKENS = 65


def check_max_global_tokens(max_global_tokens):
    """`None` or an int >= 1; returned unchanged."""
    if max_global_tokens is not None:
        check_int("max_global_tokens", max_global_tokens, 1)
    return max_global_tokens


def effective_bound(max_global_tokens):
    """The bound in force on this backend: the user's, the JAX default, or None."""
    if max_global_tokens is not None:
        return max_global_tokens
    if keras.backend.backend() == "jax":
        return DEFAULT_MAX_GLOBAL_TOKENS
    return None


def needs_static_slots():
    """Whether `G` must be a static size (JAX) rather than read from data."""
    return keras.backend.backend() == "jax"


def concrete_value(x):
    """`x` as a numpy array if its value is known now, else `None`.

    Values are known for numpy data and eager tensors; not for symbolic
    Keras tensors, TensorFlow graph tensors, JAX tracers or tensors inside
    `torch.compile`.
    """
    if x is None or isinstance(x, keras.KerasTensor) or in_symbolic_scope():
        return None
    if isinstance(x, (np.ndarray, np.generic, list, tuple)):
        return np.asarray(x)
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        if isinstance(x, jax.core.Tracer):
            return None
    elif backend == "tensorflow":
        import tensorflow as tf

        if tf.is_symbolic_tensor(x):
            return None
    elif backend == "torch":
        import torch

        if torch.compiler.is_compiling():
            return None
    return keras.ops.convert_to_numpy(x)


def global_token_counts(global_mask, padding_mask=None):
    """Global tokens per row of numpy masks (padded tokens do not count)."""
    is_global = np.asarray(global_mask) != 0
    if padding_mask is not None:
        is_global = is_global & (np.asarray(padding_mask) != 0)
    return is_global.reshape(is_global.shape[0], -1).sum(axis=1)


def check_global_tokens(global_mask, padding_mask, max_global_tokens, where="global_mask"):
    """Raises if a row of concrete masks has more global tokens than the bound.

    Does nothing when no bound is in force or the masks are symbolic.

    Args:
        global_mask: `[B, T]` mask (any tensor, numpy array or `None`).
        padding_mask: optional `[B, T]` mask; padded tokens do not count.
        max_global_tokens: the user's bound, or `None` (see `effective_bound`).
        where: what the mask is called in the message.
    """
    bound = effective_bound(max_global_tokens)
    if bound is None or global_mask is None:
        return
    global_mask = concrete_value(global_mask)
    if global_mask is None:
        return
    padding_mask = concrete_value(padding_mask)
    counts = global_token_counts(global_mask, padding_mask)
    if counts.size and counts.max() > bound:
        row = int(counts.argmax())
        raise ValueError(
            f"Row {row} of `{where}` has {int(counts[row])} global tokens, more "
            f"than max_global_tokens={bound}. Set a larger `max_global_tokens` on "
            "the op, layer or backbone (on JAX the number of global tokens is a "
            "static bound; its cost grows in proportion to it)."
        )


def check_batch_global_tokens(data, max_global_tokens):
    """`check_global_tokens` on every feature dict found in a batch structure."""
    if isinstance(data, dict):
        # A Longformer's features, and an LED's encoder features.
        for prefix in ("", "encoder_"):
            if prefix + "global_mask" in data:
                check_global_tokens(
                    data[prefix + "global_mask"], data.get(prefix + "padding_mask"), max_global_tokens
                )
        for value in data.values():
            if isinstance(value, (dict, list, tuple)):
                check_batch_global_tokens(value, max_global_tokens)
    elif isinstance(data, (list, tuple)):
        for value in data:
            check_batch_global_tokens(value, max_global_tokens)
