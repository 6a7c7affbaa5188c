"""Parity sweep: the float32 Keras model against onnxruntime, across lengths and global patterns.

An export is only trusted once it has been run: tf2onnx continues past ops
it cannot convert, and a graph that is exact at one length can be wrong at
another (a pad computed as a negative number truncates every length that
is not a multiple of the block). So every export is run by onnxruntime and
compared with Keras on the same inputs at lengths around every block
boundary of every attention layer, with no, first, middle and many global
tokens, in batches whose rows have different padding.

How close is close enough depends on the precision (`CRITERIA`): a float32
file must match to 1e-4; float16 and int8 files are compared with the
float32 model relative to each output's scale (its largest magnitude), and
int8 logits must also pick the same class.
"""

import dataclasses
import time

import numpy as np

# The sweep's inputs and model description live in their own modules;
# their names stay importable from here.
from keras_longformer.export.inputs import BATCH_SIZE  # noqa: F401
from keras_longformer.export.inputs import PATTERNS
from keras_longformer.export.inputs import TRACE_LENGTH  # noqa: F401
from keras_longformer.export.inputs import default_lengths  # noqa: F401
from keras_longformer.export.inputs import global_positions  # noqa: F401
from keras_longformer.export.inputs import input_role
from keras_longformer.export.inputs import make_inputs
from keras_longformer.export.inputs import real_lengths  # noqa: F401
from keras_longformer.export.model_info import ModelInfo  # noqa: F401
from keras_longformer.export.model_info import describe_model  # noqa: F401

# Max absolute error of a float32 export against Keras, per output dtype.
TOLERANCES = {"float32": 1e-4, "float64": 1e-4, "float16": 1e-2, "bfloat16": 5e-2}


@dataclasses.dataclass(frozen=True)
class Criterion:
    """How close an export's outputs must be to the float32 Keras model.

    Attributes:
        name: the precision it is for.
        relative: None to bound the max absolute error by `TOLERANCES`
            (per output dtype); else the bound on max absolute error
            divided by the output's scale (the reference's largest
            magnitude).
        argmax: None, or the smallest share of positions where every
            `*logits` output picks the same class as Keras, among those
            whose top-two margin in Keras exceeds the measured error
            (near-ties, which rounding may flip, are reported, not counted).
    """

    name: str
    relative: float = None
    argmax: float = None

    def __str__(self):
        if self.relative is None:
            return f"{self.name}: max abs error <= {TOLERANCES['float32']:g}"
        text = f"{self.name}: max abs error <= {self.relative:g} x each output's scale"
        if self.argmax is not None:
            text += f", logits argmax agreement >= {self.argmax:g}"
        return text


CRITERIA = {
    "float32": Criterion("float32"),
    "float16": Criterion("float16", relative=1e-2),
    "int8": Criterion("int8", relative=1e-1, argmax=0.9),
}


@dataclasses.dataclass
class VerificationRow:
    """One checked case: a batch at `length` with a global `pattern`.

    `max_abs_error` and `relative_error` are the worst over the outputs
    (`worst_output` names the one that failed, or the worst); NaN counts as
    the worst error of all. `tolerance` bounds the absolute error (float32)
    or the relative one (`relative=True`). `argmax_agreement` is the
    smallest share of agreeing `*logits` positions among those Keras
    decides by more than the measured error (None without logits);
    `near_ties` counts the positions left out.
    """

    length: int
    pattern: str
    max_abs_error: float
    ort_seconds: float
    tolerance: float
    worst_output: str = ""
    relative_error: float = 0.0
    relative: bool = False
    argmax_agreement: float = None
    argmax_minimum: float = None
    near_ties: int = 0

    @property
    def ok(self):
        measured = self.relative_error if self.relative else self.max_abs_error
        if not (bool(np.isfinite(measured)) and measured <= self.tolerance):
            return False
        if self.argmax_minimum is not None and self.argmax_agreement is not None:
            return self.argmax_agreement >= self.argmax_minimum
        return True


# ---------------------------------------------------------------------------
# Running both
# ---------------------------------------------------------------------------


def keras_outputs(model, inputs, structure, output_names):
    """Runs the Keras model on numpy `inputs` (by ONNX input name, cast to
    the model's dtypes); returns name -> numpy array."""
    from keras import tree

    flat = [
        np.asarray(inputs[structure.onnx_name(name)]).astype(structure.specs[name][1])
        for name in structure.input_names
    ]
    outputs = model(tree.pack_sequence_as(structure.inputs_struct, flat), training=False)
    if isinstance(outputs, dict):
        return {name: np.asarray(outputs[name]) for name in output_names}
    flat_outputs = tree.flatten(outputs)
    return {name: np.asarray(value) for name, value in zip(output_names, flat_outputs)}


def sweep(model, session, structure, *, lengths, info, criterion=None, progress=False, seed=0):
    """Compares `model` and the onnxruntime `session` on every case.

    Args:
        criterion: a `Criterion` (default: float32's).

    Returns a list of `VerificationRow`, one per (length, pattern).
    """
    from tqdm.auto import tqdm

    criterion = criterion or CRITERIA["float32"]
    rng = np.random.default_rng(seed)
    onnx_specs = structure.onnx_specs
    has_global = any(
        input_role(name, dtype) == "global_mask" for name, (_, dtype) in onnx_specs.items()
    )
    patterns = PATTERNS if has_global else ("none",)
    cases = [(length, pattern) for length in lengths for pattern in patterns]
    onnx_outputs = [output.name for output in session.get_outputs()]
    rows = []
    bar = tqdm(cases, desc="verifying", unit="case", disable=not progress, leave=False)
    for length, pattern in bar:
        bar.set_postfix_str(f"length={length} globals={pattern}")
        inputs = make_inputs(onnx_specs, length, pattern, info, rng=rng)
        expected = keras_outputs(model, inputs, structure, structure.output_names)
        start = time.perf_counter()
        actual = session.run(onnx_outputs, inputs)
        seconds = time.perf_counter() - start
        rows.append(
            _compare(expected, dict(zip(onnx_outputs, actual)), criterion, length, pattern, seconds)
        )
    bar.close()
    return rows


def _compare(expected, actual, criterion, length, pattern, seconds):
    """One `VerificationRow` from the outputs of both sides."""
    row = VerificationRow(
        length=length,
        pattern=pattern,
        max_abs_error=0.0,
        ort_seconds=seconds,
        tolerance=criterion.relative,
        relative=criterion.relative is not None,
        argmax_minimum=criterion.argmax,
    )
    failing = None
    for name, reference in expected.items():
        error = _max_abs_error(reference, actual.get(name))
        scale = float(np.max(np.abs(reference))) if reference.size else 0.0
        relative = error / scale if scale > 0 else (0.0 if error == 0 else float("inf"))
        if criterion.relative is None:
            tolerance = TOLERANCES.get(str(reference.dtype), 1e-4)
            row.tolerance = tolerance if row.tolerance is None else min(row.tolerance, tolerance)
            fails = not error <= tolerance
        else:
            fails = not relative <= criterion.relative
        if criterion.argmax is not None and name.endswith("logits"):
            agreement, near_ties = _argmax_agreement(reference, actual.get(name), error)
            row.near_ties += near_ties
            if row.argmax_agreement is None or agreement < row.argmax_agreement:
                row.argmax_agreement = agreement
            fails = fails or agreement < criterion.argmax
        row.max_abs_error = _worse(row.max_abs_error, error)
        row.relative_error = _worse(row.relative_error, relative)
        if fails and failing is None:
            failing = name
        if not row.worst_output or error == row.max_abs_error:
            row.worst_output = name
    row.worst_output = failing or row.worst_output
    if row.tolerance is None:
        row.tolerance = TOLERANCES["float32"]
    return row


def _worse(a, b):
    """The larger of two errors, NaN counting as the largest."""
    if np.isnan(a) or np.isnan(b):
        return float("nan")
    return max(a, b)


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


def _argmax_agreement(expected, actual, error):
    """`(agreement, near_ties)`: the share of decided positions where both
    pick the same entry of the last axis, and the number left out.

    A position is decided when Keras's top-two margin exceeds `error`, the
    measured max abs error of the output: a margin within it is a near-tie
    whose argmax any rounding may flip (a freshly initialised classifier
    has many), and says nothing about the export. With no decided position
    the agreement is 1.0.
    """
    if actual is None or np.shape(actual) != np.shape(expected) or np.ndim(expected) == 0:
        return 0.0, 0
    if np.shape(expected)[-1] < 2 or np.size(expected) == 0:
        return 1.0, 0
    expected = np.asarray(expected, np.float64)
    top_two = np.sort(expected, axis=-1)[..., -2:]
    decided = (top_two[..., 1] - top_two[..., 0]) > error
    agree = np.argmax(expected, axis=-1) == np.argmax(np.asarray(actual), axis=-1)
    near_ties = int(np.size(decided) - np.count_nonzero(decided))
    if not decided.any():
        return 1.0, near_ties
    return float(np.mean(agree[decided])), near_ties


def format_rows(rows):
    """The verification rows as a text table."""
    lines = [
        f"{'length':>7}  {'globals':<7}  {'max abs error':>13}  {'relative':>9}  "
        f"{'argmax':>6}  {'ort ms':>8}  status"
    ]
    for row in rows:
        measure = "relative" if row.relative else "abs"
        status = "ok" if row.ok else f"FAIL ({measure} > {row.tolerance:g} in {row.worst_output})"
        if not row.ok and row.argmax_minimum is not None and row.argmax_agreement is not None:
            if row.argmax_agreement < row.argmax_minimum:
                status = f"FAIL (argmax < {row.argmax_minimum:g} in {row.worst_output})"
        argmax = "-" if row.argmax_agreement is None else f"{row.argmax_agreement:.3f}"
        if row.near_ties:
            status += f" ({row.near_ties} near-ties not counted)"
        lines.append(
            f"{row.length:>7}  {row.pattern:<7}  {row.max_abs_error:>13.3e}  "
            f"{row.relative_error:>9.2e}  {argmax:>6}  {row.ort_seconds * 1e3:>8.2f}  {status}"
        )
    return "\n".join(lines)
