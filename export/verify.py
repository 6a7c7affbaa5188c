"""Parity sweep: Keras against onnxruntime across lengths and global patterns.

An export is only trusted once it has been run: tf2onnx continues past ops
it cannot convert, and a graph that is exact at one length can be wrong at
another (a pad computed as a negative number truncates every length that
is not a multiple of the block). So every export is run by onnxruntime and
compared with Keras on the same inputs at lengths around every block
boundary of every attention layer, with no, first, middle and many global
tokens, in batches whose rows have different padding.
"""

import dataclasses
import time

import numpy as np

# Max absolute error allowed against Keras, per output dtype.
TOLERANCES = {"float32": 1e-4, "float64": 1e-4, "float16": 1e-2, "bfloat16": 5e-2}
PATTERNS = ("none", "first", "middle", "many")
# Rows of a verification batch: real lengths L, L - 1 and about L / 2.
BATCH_SIZE = 3
# The length the model is called at when it has never been called.
TRACE_LENGTH = 8

_TOKEN_NAMES = ("token_ids", "input_ids", "token", "word_ids")
_PAD_KEYS = ("pad_token_id", "padding_idx", "pad_id", "padding_id")
_VOCAB_KEYS = ("vocabulary_size", "vocab_size")
_MAX_LENGTH_KEYS = ("max_sequence_length",)


@dataclasses.dataclass
class VerificationRow:
    """One checked case: a batch at `length` with a global `pattern`."""

    length: int
    pattern: str
    max_abs_error: float
    ort_seconds: float
    tolerance: float
    worst_output: str = ""

    @property
    def ok(self):
        return bool(np.isfinite(self.max_abs_error)) and self.max_abs_error <= self.tolerance


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


# ---------------------------------------------------------------------------
# Lengths and inputs
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# Running both
# ---------------------------------------------------------------------------


def keras_outputs(model, inputs, structure, output_names):
    """Runs the Keras model on numpy `inputs`; returns name -> numpy array."""
    from keras import tree

    flat = [inputs[name] for name in structure.input_names]
    outputs = model(tree.pack_sequence_as(structure.inputs_struct, flat), training=False)
    if isinstance(outputs, dict):
        return {name: np.asarray(outputs[name]) for name in output_names}
    flat_outputs = tree.flatten(outputs)
    return {name: np.asarray(value) for name, value in zip(output_names, flat_outputs)}


def sweep(model, session, structure, *, lengths, info, progress=False, seed=0):
    """Compares `model` and the onnxruntime `session` on every case.

    Returns a list of `VerificationRow`, one per (length, pattern).
    """
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    has_global = any(
        input_role(name, dtype) == "global_mask" for name, (_, dtype) in structure.specs.items()
    )
    patterns = PATTERNS if has_global else ("none",)
    cases = [(length, pattern) for length in lengths for pattern in patterns]
    onnx_outputs = [output.name for output in session.get_outputs()]
    rows = []
    bar = tqdm(cases, desc="verifying", unit="case", disable=not progress, leave=False)
    for length, pattern in bar:
        bar.set_postfix_str(f"length={length} globals={pattern}")
        inputs = make_inputs(structure.specs, length, pattern, info, rng=rng)
        expected = keras_outputs(model, inputs, structure, structure.output_names)
        start = time.perf_counter()
        actual = session.run(onnx_outputs, inputs)
        seconds = time.perf_counter() - start
        actual = dict(zip(onnx_outputs, actual))
        worst, worst_name, tolerance = 0.0, "", None
        for name in structure.output_names:
            reference = expected[name]
            output_tolerance = TOLERANCES.get(str(reference.dtype), 1e-4)
            tolerance = output_tolerance if tolerance is None else min(tolerance, output_tolerance)
            error = _max_abs_error(reference, actual.get(name))
            # NaN counts as the worst error of all.
            if not np.isnan(worst) and (np.isnan(error) or error > worst):
                worst, worst_name = error, name
        rows.append(
            VerificationRow(
                length=length,
                pattern=pattern,
                max_abs_error=worst,
                ort_seconds=seconds,
                tolerance=tolerance if tolerance is not None else 1e-4,
                worst_output=worst_name,
            )
        )
    bar.close()
    return rows


def _max_abs_error(expected, actual):
    if actual is None or np.shape(actual) != np.shape(expected):
        return float("inf")
    expected = np.asarray(expected)
    actual = np.asarray(actual)
    if expected.size == 0:
        return 0.0
    if expected.dtype == bool or actual.dtype == bool:
        return float(np.max(expected != actual))
    difference = np.abs(expected.astype(np.float64) - actual.astype(np.float64))
    if np.isnan(difference).any():
        return float("nan")
    return float(np.max(difference))


def format_rows(rows):
    """The verification rows as a text table."""
    lines = [f"{'length':>7}  {'globals':<7}  {'max abs error':>13}  {'ort ms':>8}  status"]
    for row in rows:
        status = "ok" if row.ok else f"FAIL (> {row.tolerance:g} in {row.worst_output})"
        lines.append(
            f"{row.length:>7}  {row.pattern:<7}  {row.max_abs_error:>13.3e}  "
            f"{row.ort_seconds * 1e3:>8.2f}  {status}"
        )
    return "\n".join(lines)
