"""`export_onnx`: a Keras model to one ONNX file, verified against Keras, written atomically.

The steps live in their own modules: `loading` (a `.keras` file),
`structure` (input and output names), `conversion` (tf2onnx),
`graph_rewrites` (weights as plain MatMul/Gather), `precision` (float16,
int8), `metadata`, `verify` (the parity sweep) and `files` (staging and
atomic publish).

onnxruntime's transformer optimizer (`onnxruntime.transformers.optimizer`,
model_type "bert", opt_level 0, 1, 2 and 99) was tried on an exported
backbone: it matched none of its LayerNormalization, Gelu, SkipLayerNorm or
Attention patterns (tf2onnx writes LayerNorm's mean as GlobalAveragePool;
the attention is blocked, not BERT's); at opt_level 2 it made only the 6
FusedMatMul an onnxruntime session makes anyway at ORT_ENABLE_ALL. Outputs
were identical and time within noise, so files are written without it.
"""

import os

import numpy as np

from keras_longformer.export import conversion as conversion_lib
from keras_longformer.export import files as files_lib
from keras_longformer.export import graph_rewrites
from keras_longformer.export import precision as precision_lib
from keras_longformer.export import verify as verify_lib
from keras_longformer.export.conversion import MIN_OPSET
from keras_longformer.export.conversion import max_opset
from keras_longformer.export.errors import ExportError
from keras_longformer.export.errors import UnknownLayerError  # noqa: F401  (re-exported)
from keras_longformer.export.errors import one_line
from keras_longformer.export.loading import load_keras_model
from keras_longformer.export.metadata import read_metadata  # noqa: F401  (re-exported)
from keras_longformer.export.metadata import set_metadata
from keras_longformer.export.report import ExportReport
from keras_longformer.export.structure import INPUT_NAMINGS
from keras_longformer.export.structure import ensure_called
from keras_longformer.export.structure import model_structure
from keras_longformer.export.structure import weight_bytes

# Models whose weights exceed this are written with ONNX external data
# (protobuf cannot serialize a message over 2 GB).
EXTERNAL_DATA_THRESHOLD = 1_800_000_000


def _check_backend():
    """tf2onnx converts TensorFlow graphs: refuse at once in a JAX or torch process."""
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ExportError(
            "export_onnx converts with tf2onnx, which needs Keras on the TensorFlow "
            f"backend; this process runs Keras on {backend!r}. Save the model "
            "(model.save('model.keras')) and run `keras-longformer export model.keras "
            "model.onnx`, which runs on TensorFlow whatever KERAS_BACKEND says."
        )


def export_onnx(
    model,
    output_path,
    *,
    opset=17,
    precision="float32",
    input_names="keras",
    verify=True,
    lengths=None,
    overwrite=False,
    progress=False,
):
    """Exports a Keras model to one ONNX file, verified against Keras.

    The ONNX inputs are the model's input names (a backbone's `token_ids`,
    `padding_mask`, `global_mask`), or Hugging Face's, and its outputs the
    model's output names (`sequence_output`, `pooled_output`, a task
    model's), with symbolic `batch` and `sequence` dimensions. Unless
    `verify=False`, the file is checked with `onnx.checker`, loaded in
    onnxruntime (CPU) and compared with the float32 Keras model at every
    length of the sweep (1, 2, each attention window +- 1, a length longer
    than the traced one and a long one, or `lengths`) with no, first,
    middle and many global tokens, in batches whose rows have different
    padding. A case past the precision's criterion fails the export with
    the table: float32, max abs error 1e-4; float16, 1e-2 of each output's
    scale (its largest magnitude); int8, 1e-1 of the scale and the same
    class at >= 90% of positions of every `*logits` output.

    Every argument is checked before any work. The file is written into a
    staging directory beside `output_path` and published only once
    verified, so a failed or interrupted export leaves nothing, and an
    existing file is kept unless `overwrite`. Models over ~1.8 GB of
    weights (as Keras holds them) are written with ONNX external data,
    `output_path + ".data"`, published together with the `.onnx` (see
    `keras_longformer.export.files`).

    Args:
        model: a `keras.Model` (functional), or a path to a `.keras` file.
        output_path: path of the `.onnx` file to write. Its directory must
            exist.
        opset: ONNX opset, from 13 to the highest tf2onnx supports (18).
        precision: `"float32"`; `"float16"` (weights and matrix products
            in float16 for GPU serving; softmax and normalisation stay
            float32; inputs and outputs keep their types); or `"int8"`
            (onnxruntime's dynamic quantization of every projection and
            embedding weight, for CPU serving).
        input_names: `"keras"` (the model's input names and dtypes) or
            `"huggingface"`: `input_ids`, `attention_mask` and
            `global_attention_mask`, all int64, so a Hugging Face
            tokenizer's numpy output feeds the file as it is.
        verify: whether to run the verification sweep.
        lengths: optional sequence lengths to verify at, replacing the
            default sweep; none may exceed the model's
            `max_sequence_length`.
        overwrite: whether to replace an existing `output_path` (and its
            `.data` file).
        progress: whether to show a progress bar over the sweep.

    A task's preprocessor (tokenizer and packing) is not exported: the file
    takes the features it produces, and the report names it.

    Returns:
        An `ExportReport`: path, opset, precision, inputs and outputs with
        their dims, weight bytes, the preprocessor left out, and one row per
        verified case (length, global pattern, errors against Keras,
        onnxruntime seconds).

    Raises:
        ExportError: conversion left ops ONNX does not define, the checker
            or onnxruntime rejected the file, or verification failed
            (`error.report` holds the table).
        ValueError, TypeError, FileExistsError, FileNotFoundError,
        IsADirectoryError, PermissionError, UnknownLayerError: bad
            arguments or files, detected before any conversion.

    Example:

    >>> report = export_onnx(classifier, "classifier.onnx", precision="float16",
    ...                      input_names="huggingface", overwrite=True)
    >>> print(report.table())
    """
    _check_backend()
    _check_arguments(opset, precision, input_names)
    lengths = _checked_lengths(lengths)
    output_path = files_lib.check_target(output_path, overwrite)
    if isinstance(model, (str, os.PathLike)):
        model = load_keras_model(model)
    structure = model_structure(model, input_names)
    info = verify_lib.describe_model(model)
    _check_lengths_fit(lengths, info)
    large = weight_bytes(model) > EXTERNAL_DATA_THRESHOLD
    if large:
        files_lib.check_data_target(output_path, overwrite)

    with files_lib.staging_directory(output_path) as staging:
        ensure_called(model, structure, info)
        model_proto = _onnx_graph(model, structure, opset, precision, large)
        set_metadata(model_proto, info, precision=precision, input_names=input_names)
        staged = os.path.join(staging, os.path.basename(output_path))
        if precision == "int8":
            model_proto = _quantized(model_proto, staging, staged, large)
            set_metadata(model_proto, info, precision=precision, input_names=input_names)
        inputs, outputs = conversion_lib.io_dims(model_proto)
        report = ExportReport(
            path=output_path,
            opset=opset,
            inputs=inputs,
            outputs=outputs,
            precision=precision,
            weight_bytes=graph_rewrites.initializer_bytes(model_proto),
            preprocessor=_preprocessor_name(model),
        )
        staged_data = files_lib.save(model_proto, staged, external_data=large)
        del model_proto
        if verify:
            criterion = verify_lib.CRITERIA[precision]
            report.rows = _verify(model, staged, structure, info, lengths, progress, criterion)
            failures = report.failures
            if failures:
                raise ExportError(
                    f"ONNX output differs from Keras in {len(failures)} of {len(report.rows)} "
                    f"cases ({criterion}; max abs error {report.max_abs_error:.3e}); nothing "
                    f"written to {output_path!r}\n{report.table()}",
                    report,
                )
            report.verified = True
        files_lib.publish(staged, output_path, staged_data=staged_data, overwrite=overwrite)
        if staged_data is not None:
            report.external_data = files_lib.data_path_of(output_path)
    return report


def check_opset(opset):
    """A `ValueError` unless `opset` is one the installed tf2onnx converts to."""
    top = max_opset()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= top:
        raise ValueError(
            f"`opset` must be an int from {MIN_OPSET} to {top} (the highest the "
            f"installed tf2onnx converts to). Received: opset={opset!r}"
        )


def _check_arguments(opset, precision, input_names):
    check_opset(opset)
    precision_lib.check_precision(precision)
    if not isinstance(input_names, str) or input_names not in INPUT_NAMINGS:
        raise ValueError(
            f"`input_names` must be one of {', '.join(repr(n) for n in INPUT_NAMINGS)}. "
            f"Received: input_names={input_names!r}"
        )


def _checked_lengths(lengths):
    if lengths is None:
        return None
    lengths = list(lengths)
    if not lengths or any(
        isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1 for n in lengths
    ):
        raise ValueError(
            f"`lengths` must be a non-empty list of ints >= 1. Received: lengths={lengths!r}"
        )
    return sorted(set(int(n) for n in lengths))


def _check_lengths_fit(lengths, info):
    if lengths is not None and info.max_sequence_length:
        too_long = [n for n in lengths if n > info.max_sequence_length]
        if too_long:
            raise ValueError(
                f"`lengths` {too_long} exceed the model's max_sequence_length "
                f"{info.max_sequence_length}. Received: lengths={lengths}"
            )


def _onnx_graph(model, structure, opset, precision, large):
    """The rewritten ONNX graph of `model` in float32, or of its float16 copy."""
    source = model
    if precision == "float16":
        try:
            source = precision_lib.float16_copy(model)
        except ValueError as error:
            raise ExportError(str(error)) from error
        float16_structure = model_structure(source, "keras")
        float16_structure.onnx_names = structure.onnx_names
        float16_structure.onnx_dtypes = structure.onnx_dtypes
        float16_structure.output_dtypes = structure.output_dtypes  # answers stay float32
        structure = float16_structure
        ensure_called(source, structure, verify_lib.describe_model(source))
    model_proto = _convert(source, structure, opset, large)
    conversion_lib.name_dims(model_proto, source, structure)
    graph_rewrites.rewrite(model_proto)
    return model_proto


def _convert(model, structure, opset, large):
    """tf2onnx's graph of `model`, refused if tf2onnx left ops ONNX does not define."""
    return refuse_unconverted(conversion_lib.convert(model, structure, opset=opset, large_model=large), opset)


def refuse_unconverted(model_proto, opset, what="these ops"):
    """`model_proto`, or an `ExportError` listing the ops tf2onnx left that
    ONNX does not define (`what` names where, e.g. a file of a pair)."""
    bad = conversion_lib.unconverted_ops(model_proto, opset)
    if bad:
        listed = ", ".join(f"{op} (x{count})" for op, count in sorted(bad.items()))
        hint = ""
        if "Erfc" in bad:
            hint = (
                " Exact GELU lowers to Erfc in TensorFlow; write it as "
                "0.5 * x * (1 + erf(x / sqrt(2))) to export."
            )
        raise ExportError(f"tf2onnx could not convert {what} to ONNX opset {opset}: {listed}.{hint}")
    return model_proto


def _quantized(model_proto, staging, staged, large):
    """The int8 graph of a float32 `model_proto` (written and read back in `staging`)."""
    import onnx

    name = os.path.basename(staged)
    directories = {kind: os.path.join(staging, kind) for kind in ("float32", "int8")}
    for directory in directories.values():
        os.mkdir(directory)
    float32_path = os.path.join(directories["float32"], name)
    int8_path = os.path.join(directories["int8"], name)
    files_lib.save(model_proto, float32_path, external_data=large)
    try:
        precision_lib.quantize_int8(float32_path, int8_path, external_data=large)
    except Exception as error:
        raise ExportError(f"onnxruntime's int8 quantization failed: {one_line(error)}") from error
    return onnx.load(int8_path)


def _verify(model, path, structure, info, lengths, progress, criterion):
    import onnx

    from keras_longformer.export.session import onnx_session

    try:
        onnx.checker.check_model(path, full_check=True)
    except Exception as error:
        raise ExportError(f"onnx.checker rejected the exported graph: {one_line(error)}") from error
    try:
        session = onnx_session(path, provider="cpu")
    except Exception as error:
        raise ExportError(f"onnxruntime cannot load the exported graph: {one_line(error)}") from error
    expected = set(structure.onnx_specs)
    names = {value.name for value in session.get_inputs()}
    if names != expected:
        raise ExportError(f"ONNX inputs {sorted(names)} are not the expected {sorted(expected)}")
    names = {value.name for value in session.get_outputs()}
    if names != set(structure.output_names):
        raise ExportError(
            f"ONNX outputs {sorted(names)} do not match the model's {structure.output_names}"
        )
    if lengths is None:
        lengths = verify_lib.default_lengths(info)
    try:
        return verify_lib.sweep(
            model, session, structure, lengths=lengths, info=info, criterion=criterion,
            progress=progress,
        )
    except ExportError:
        raise
    except Exception as error:
        raise ExportError(f"Running the exported graph failed: {one_line(error)}") from error


def _preprocessor_name(model):
    """The class of a task's attached preprocessor (not exported), or None."""
    preprocessor = getattr(model, "preprocessor", None)
    return type(preprocessor).__name__ if preprocessor is not None else None
