"""Inputs of the verification sweep: lengths around every block boundary,
global-token patterns, and batches whose rows have different padding."""

import numpy as np

PATTERNS = ("none", "first", "middle", "many")
# Rows of a verification batch: real lengths L, L - 1 and about L / 2.
BATCH_SIZE = 3
# The length the model is called at when it has never been called.
TRACE_LENGTH = 8

_TOKEN_NAMES = ("token_ids", "input_ids", "token", "word_ids")


def default_lengths(info, traced_length=TRACE_LENGTH):
    """1, 2, window - 1, window, window + 1 of every attention layer (and
    window * dilation +- 1 for dilated heads), a length longer than the
    traced one, and a long one, capped at the model's maximum length."""
    lengths = {1, 2}
    spans = []
    for window, dilation in info.windows:
        for size in {max(window, 1), max(window, 1) * dilation}:
            lengths.update({size - 1, size, size + 1})
            spans.append(size)
    widest = max(spans, default=traced_length)
    lengths.add(max(traced_length, 2 * widest) + 3)  # longer than traced, two blocks and a bit
    lengths.add(max(8 * widest + 5, 133))  # a long one, not a multiple of any block
    if info.max_sequence_length:
        lengths = {min(length, info.max_sequence_length) for length in lengths}
    return sorted(length for length in lengths if length >= 1)


def real_lengths(length, batch_size=BATCH_SIZE):
    """Real (unpadded) lengths of the rows of a verification batch."""
    rows = [length, max(1, length - 1), max(1, (length + 1) // 2)]
    return (rows * batch_size)[:batch_size]


def global_positions(pattern, real_length):
    """Positions of global tokens in a row with `real_length` real tokens."""
    if pattern == "none":
        return []
    if pattern == "first":
        return [0]
    if pattern == "middle":
        return [real_length // 2]
    if pattern == "many":
        step = max(1, real_length // 5)
        return sorted(set(range(0, real_length, step)) | {real_length - 1})
    raise ValueError(f"Unknown global pattern {pattern!r}; expected one of {PATTERNS}")


def input_role(name, dtype):
    """'token_ids', 'padding_mask', 'global_mask', 'ids' (other ints) or 'float'."""
    lowered = name.lower()
    if "global" in lowered:
        return "global_mask"
    if "padding_mask" in lowered or "attention_mask" in lowered or lowered == "mask":
        return "padding_mask"
    if "bool" in str(dtype):
        return "padding_mask"
    if "int" in str(dtype):
        if any(word in lowered for word in _TOKEN_NAMES):
            return "token_ids"
        return "ids"
    return "float"


def make_inputs(specs, length, pattern, info, *, rng, batch_size=BATCH_SIZE):
    """Numpy inputs for `specs` (name -> (shape, dtype)): a batch of rows with
    different padding and the global `pattern` among each row's real tokens."""
    rows = real_lengths(length, batch_size)
    padding = np.zeros((batch_size, length), bool)
    global_mask = np.zeros((batch_size, length), bool)
    for row, real in enumerate(rows):
        padding[row, :real] = True
        global_mask[row, global_positions(pattern, real)] = True
    if pattern == "many" and length > rows[-1]:
        # A global flag on a padded token must be ignored.
        global_mask[-1, length - 1] = True
    inputs = {}
    for name, (shape, dtype) in specs.items():
        role = input_role(name, dtype)
        full_shape = _concrete_shape(name, shape, batch_size, length)
        if role in ("padding_mask", "global_mask"):
            mask = padding if role == "padding_mask" else global_mask
            inputs[name] = mask.astype(dtype) if "bool" not in str(dtype) else mask
        elif role == "token_ids":
            inputs[name] = _token_ids(full_shape, padding, info, rng).astype(dtype)
        elif role == "ids":
            inputs[name] = np.zeros(full_shape, dtype)
        else:
            inputs[name] = rng.standard_normal(full_shape).astype(dtype)
    return inputs


def _concrete_shape(name, shape, batch_size, length):
    concrete = []
    for axis, dim in enumerate(shape):
        if dim is None:
            if axis > 1:
                raise ValueError(
                    f"Cannot make verification inputs for {name!r}: only the batch and "
                    f"sequence axes may be dynamic. Received: shape={tuple(shape)}"
                )
            dim = batch_size if axis == 0 else length
        concrete.append(int(dim))
    return tuple(concrete)


def _token_ids(shape, padding, info, rng):
    vocabulary = info.vocabulary_size or 2
    pad = info.pad_token_id
    # Real tokens avoid the pad id (and 0 and 1, the usual pad ids, when it
    # is unknown), where the vocabulary is large enough for that.
    avoid = {pad} if pad is not None else {0, 1}
    allowed = np.array([i for i in range(min(vocabulary, 4096)) if i not in avoid])
    if allowed.size == 0:
        allowed = np.arange(vocabulary)
    ids = rng.choice(allowed, size=shape)
    fill = pad if pad is not None and 0 <= pad < vocabulary else 0
    if len(shape) == 2:
        ids = np.where(padding, ids, fill)
    return ids
