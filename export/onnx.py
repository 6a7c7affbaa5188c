"""`export_onnx`: tf2onnx conversion with named, dynamic axes, verified, written atomically."""

import contextlib
import dataclasses
import json
import logging
import os
import tempfile
import zipfile

import numpy as np

from keras_longformer.export import verify as verify_lib

# tf2onnx 1.17 converts up to opset 18; the attention graph needs opset 13
# (ReduceSum with axes as an input, Unsqueeze/Squeeze with axes inputs).
MIN_OPSET = 13
# Models whose weights exceed this are written with ONNX external data
# (protobuf cannot serialize a message over 2 GB).
EXTERNAL_DATA_THRESHOLD = 1_800_000_000

_METADATA_PREFIX = "keras_longformer."


def max_opset():
    """The highest opset the installed tf2onnx converts to."""
    from tf2onnx import constants

    return max(constants.OPSET_TO_IR_VERSION)


class ExportError(RuntimeError):
    """An export that could not be written or did not verify.

    `report` holds the `ExportReport` (with the failing verification table)
    when the conversion got as far as verification, else None.
    """

    def __init__(self, message, report=None):
        super().__init__(message)
        self.report = report


class UnknownLayerError(ValueError):
    """A `.keras` file uses layer classes that are not registered."""

    def __init__(self, path, class_names):
        self.class_names = list(class_names)
        super().__init__(
            f"{os.fspath(path)!r} uses layer class(es) this package does not know: "
            f"{', '.join(self.class_names)}. Import the module that registers them "
            "(keras.saving.register_keras_serializable) before exporting."
        )


@dataclasses.dataclass
class ExportReport:
    """What `export_onnx` wrote and how it was checked.

    Attributes:
        path: the ONNX file written (or that would have been written).
        opset: the ONNX opset.
        inputs: input name -> dims (ints, or names such as `"batch"`).
        outputs: output name -> dims.
        rows: one `VerificationRow` per checked case; empty if not verified.
        verified: whether the verification sweep ran and passed.
        external_data: path of the external data file, or None.
    """

    path: str
    opset: int
    inputs: dict
    outputs: dict
    rows: list = dataclasses.field(default_factory=list)
    verified: bool = False
    external_data: str = None

    @property
    def max_abs_error(self):
        errors = [row.max_abs_error for row in self.rows]
        return max(errors) if errors else None

    @property
    def failures(self):
        return [row for row in self.rows if not row.ok]

    def table(self):
        """The report as text: file, inputs, outputs and the verification table."""
        def dims(spec):
            return "[" + ", ".join(str(d) for d in spec) + "]"

        lines = [f"ONNX file: {self.path} (opset {self.opset})"]
        if self.external_data:
            lines.append(f"external data: {self.external_data}")
        for title, specs in (("inputs", self.inputs), ("outputs", self.outputs)):
            lines.append(f"{title}:")
            for name, spec in specs.items():
                lines.append(f"  {name:<20} {dims(spec['dims'])} {spec['dtype']}")
        if self.rows:
            worst = self.max_abs_error
            lines.append(
                f"verification: {len(self.rows)} cases, "
                f"{len(self.rows) - len(self.failures)} ok, max abs error {worst:.3e}"
            )
            lines.append(verify_lib.format_rows(self.rows))
        else:
            lines.append("verification: not run")
        return "\n".join(lines)

    def __str__(self):
        return self.table()


@dataclasses.dataclass
class ModelStructure:
    """Names and specs of a Keras model's inputs and outputs, in ONNX order."""

    inputs_struct: object
    input_names: list
    specs: dict  # input name -> (shape tuple with None, numpy dtype name)
    output_names: list


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def load_keras_model(path):
    """Loads a `.keras` file with this package's layers registered.

    Raises `FileNotFoundError`, `ValueError` (not a Keras model file) or
    `UnknownLayerError` (naming every class it cannot resolve).
    """
    import keras

    import keras_longformer  # noqa: F401  (registers the layers)

    with contextlib.suppress(ImportError):
        import keras_longformer.models  # noqa: F401

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such file: {path!r}")
    if not os.path.isfile(path):
        raise ValueError(f"{path!r} is not a file (expected a .keras model file)")
    if not os.access(path, os.R_OK):
        raise PermissionError(f"Cannot read {path!r}: permission denied")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path!r} is not a Keras model file (a .keras zip archive)")
    with zipfile.ZipFile(path) as archive:
        if "config.json" not in archive.namelist():
            raise ValueError(f"{path!r} is a zip file but not a Keras model (no config.json)")
        try:
            config = json.loads(archive.read("config.json"))
        except ValueError as error:
            raise ValueError(f"{path!r} has an unreadable config.json: {error}") from None
    unknown = _unknown_classes(config)
    if unknown:
        raise UnknownLayerError(path, unknown)
    loadable = path
    cleanup = None
    if not path.endswith(".keras"):
        # Keras insists on the extension; a renamed copy loads the same.
        handle, loadable = tempfile.mkstemp(suffix=".keras")
        os.close(handle)
        cleanup = loadable
        with open(path, "rb") as source, open(loadable, "wb") as target:
            target.write(source.read())
    try:
        model = keras.saving.load_model(loadable, compile=False)
    except Exception as error:
        import re

        missing = re.findall(r"Could not locate (?:class|function) '([^']+)'", _error_chain(error))
        if missing:
            raise UnknownLayerError(path, dict.fromkeys(missing)) from error
        raise ValueError(f"Cannot load {path!r} as a Keras model: {_one_line(error)}") from error
    finally:
        if cleanup:
            os.remove(cleanup)
    if not isinstance(model, keras.Model):
        raise ValueError(f"{path!r} holds a {type(model).__name__}, not a keras.Model")
    return model


def _unknown_classes(config):
    """Class names in a saved config that Keras cannot resolve."""
    import importlib

    import keras

    unknown = []

    def resolvable(entry):
        class_name = entry.get("class_name")
        module = entry.get("module") or ""
        registered = entry.get("registered_name")
        if not isinstance(class_name, str) or class_name.startswith("__"):
            return True  # Keras's own markers: __tensor__, __numpy__, __lambda__, ...
        if module == "builtins" or class_name == "function":
            return True
        for name in (registered, class_name):
            if isinstance(name, str) and keras.saving.get_registered_object(name) is not None:
                return True
        if module.split(".")[0] == "keras":
            try:
                return hasattr(importlib.import_module(module), class_name)
            except Exception:
                return False
        if module:
            return False  # Keras resolves other modules' classes only by registration.
        return hasattr(keras.layers, class_name) or hasattr(keras, class_name)

    def walk(node):
        if isinstance(node, dict):
            if "class_name" in node and "config" in node and not resolvable(node):
                name = node.get("registered_name") or node["class_name"]
                if name not in unknown:
                    unknown.append(name)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    return unknown


def _error_chain(error):
    texts = []
    while error is not None and len(texts) < 10:
        texts.append(str(error))
        error = error.__cause__ or error.__context__
    return "\n".join(texts)


def _one_line(error):
    text = " ".join(str(error).split())
    return (text[:400] + "...") if len(text) > 400 else text or type(error).__name__


# ---------------------------------------------------------------------------
# Model structure
# ---------------------------------------------------------------------------


def model_structure(model):
    """Input/output names and specs of a Keras model."""
    import keras
    from keras import tree

    if not isinstance(model, keras.Model):
        raise TypeError(
            "`model` must be a keras.Model or a path to a .keras file. "
            f"Received: {type(model).__name__}"
        )
    inputs_struct = getattr(model, "_inputs_struct", None)
    if inputs_struct is None:
        raise ValueError(
            f"Cannot export {model.name!r}: only functional models (keras.Model "
            "built from keras.Input, like the keras_longformer backbones) have "
            "the input names and specs an export needs"
        )
    flat = tree.flatten(inputs_struct)
    if isinstance(inputs_struct, dict):
        # tree.flatten orders dicts by sorted key.
        input_names = sorted(inputs_struct)
    else:
        input_names = [tensor.name for tensor in flat]
    if len(set(input_names)) != len(input_names):
        raise ValueError(f"Model inputs must have distinct names. Received: {input_names}")
    specs = {
        name: (tuple(tensor.shape), keras.backend.standardize_dtype(tensor.dtype))
        for name, tensor in zip(input_names, flat)
    }
    outputs_struct = getattr(model, "_outputs_struct", None)
    if isinstance(outputs_struct, dict):
        output_names = list(outputs_struct)
    else:
        output_names = list(model.output_names)
        count = len(tree.flatten(outputs_struct)) if outputs_struct is not None else len(output_names)
        if len(output_names) != count:
            output_names = [f"output_{i}" for i in range(count)]
    if len(set(output_names)) != len(output_names):
        output_names = [f"{name}_{i}" for i, name in enumerate(output_names)]
    clashes = set(output_names) & set(input_names)
    if clashes:
        raise ValueError(f"Output names clash with input names: {sorted(clashes)}")
    return ModelStructure(inputs_struct, input_names, specs, output_names)


def _ensure_called(model, structure, info):
    """Calls a model that was never called once on small dummy inputs."""
    if getattr(model, "_called", True):
        return
    inputs = verify_lib.make_inputs(
        structure.specs,
        min(verify_lib.TRACE_LENGTH, info.max_sequence_length or verify_lib.TRACE_LENGTH),
        "first",
        info,
        rng=np.random.default_rng(0),
        batch_size=2,
    )
    verify_lib.keras_outputs(model, inputs, structure, structure.output_names)


def _weight_bytes(model):
    import keras

    total = 0
    for variable in model.weights:
        dtype = keras.backend.standardize_dtype(variable.dtype)
        itemsize = 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize
        total += int(np.prod(variable.shape)) * itemsize
    return total


# ---------------------------------------------------------------------------
# Conversion
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_tf2onnx():
    loggers = [logging.getLogger(name) for name in ("tf2onnx", "tensorflow")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _patch_tf2onnx():
    """tf2onnx 1.17 still uses `np.object` and friends; Keras ships the fix."""
    import warnings

    try:
        from keras.src.export.tf2onnx_lib import patch_tf2onnx
    except ImportError:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        patch_tf2onnx()


def convert(model, structure, *, opset, large_model):
    """tf2onnx conversion of `model`; returns (model_proto, external_storage)."""
    import tensorflow as tf
    from keras import tree

    _patch_tf2onnx()
    import tf2onnx

    signature = [
        tf.TensorSpec(shape, dtype=dtype, name=name)
        for name, (shape, dtype) in structure.specs.items()
    ]
    names = list(structure.specs)

    @tf.function
    def serve(*flat_inputs):
        by_name = dict(zip(names, flat_inputs))
        ordered = [by_name[name] for name in structure.input_names]
        outputs = model(tree.pack_sequence_as(structure.inputs_struct, ordered), training=False)
        if isinstance(outputs, dict):
            return {name: tf.identity(outputs[name]) for name in structure.output_names}
        flat_outputs = tree.flatten(outputs)
        return {name: tf.identity(t) for name, t in zip(structure.output_names, flat_outputs)}

    with _quiet_tf2onnx():
        return tf2onnx.convert.from_function(
            serve, signature, opset=opset, large_model=large_model
        )


def unconverted_ops(model_proto, opset):
    """Op types left in the graph that ONNX does not define (tf2onnx keeps
    going past ops it cannot convert, such as `Erfc`)."""
    import onnx

    bad = {}
    for node in model_proto.graph.node:
        domain = node.domain or ""
        if domain not in ("", "ai.onnx"):
            if domain != "ai.onnx.ml":
                bad[f"{domain}:{node.op_type}"] = bad.get(f"{domain}:{node.op_type}", 0) + 1
            continue
        if not onnx.defs.has(node.op_type, max_inclusive_version=opset, domain=""):
            bad[node.op_type] = bad.get(node.op_type, 0) + 1
    return bad


def _dims_from_probe(model, structure):
    """Output dims that follow the batch and sequence sizes, from two
    symbolic calls at different sizes: output name -> list of names/None."""
    import keras
    from keras import tree

    probes = []
    for batch, length in ((2, 5), (3, 7)):
        flat = []
        for name in structure.input_names:
            shape, dtype = structure.specs[name]
            concrete = [
                (batch if axis == 0 else length) if dim is None else dim
                for axis, dim in enumerate(shape)
            ]
            flat.append(keras.KerasTensor(concrete, dtype=dtype))
        try:
            out = model.compute_output_spec(
                tree.pack_sequence_as(structure.inputs_struct, flat)
            )
        except Exception:
            return {}
        if isinstance(out, dict):
            shapes = {name: tuple(out[name].shape) for name in structure.output_names}
        else:
            shapes = {
                name: tuple(t.shape)
                for name, t in zip(structure.output_names, tree.flatten(out))
            }
        probes.append(shapes)
    names = {}
    for name in structure.output_names:
        first, second = probes[0].get(name), probes[1].get(name)
        if first is None or second is None or len(first) != len(second):
            continue
        names[name] = [
            "batch" if (a, b) == (2, 3) else "sequence" if (a, b) == (5, 7) else None
            for a, b in zip(first, second)
        ]
    return names


def _name_dims(model_proto, model, structure):
    """Readable symbolic dims ('batch', 'sequence') in place of tf2onnx's 'unk__N'."""
    probed = _dims_from_probe(model, structure)
    for value in model_proto.graph.input:
        shape = structure.specs.get(value.name, ((),))[0]
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if dim.HasField("dim_value"):
                continue
            known = shape[axis] if axis < len(shape) else "?"
            dim.dim_param = (
                "batch" if axis == 0 and known is None
                else "sequence" if axis == 1 and known is None
                else f"{value.name}_dim{axis}"
            )
    for value in model_proto.graph.output:
        guess = probed.get(value.name, [])
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if dim.HasField("dim_value"):
                continue
            name = guess[axis] if axis < len(guess) else None
            dim.dim_param = name or f"{value.name}_dim{axis}"


def _io_dims(model_proto):
    import onnx

    def describe(values):
        result = {}
        for value in values:
            tensor_type = value.type.tensor_type
            result[value.name] = {
                "dims": [
                    d.dim_param if d.dim_param else int(d.dim_value)
                    for d in tensor_type.shape.dim
                ],
                "dtype": onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).name,
            }
        return result

    return describe(model_proto.graph.input), describe(model_proto.graph.output)


def _set_metadata(model_proto, info):
    import keras_longformer

    values = {
        "version": keras_longformer.__version__,
        "vocabulary_size": info.vocabulary_size,
        "pad_token_id": info.pad_token_id,
        "max_sequence_length": info.max_sequence_length,
        "windows": json.dumps(info.windows),
    }
    existing = {prop.key for prop in model_proto.metadata_props}
    for key, value in values.items():
        if value is None or _METADATA_PREFIX + key in existing:
            continue
        prop = model_proto.metadata_props.add()
        prop.key = _METADATA_PREFIX + key
        prop.value = str(value)
    model_proto.producer_name = "keras_longformer"
    model_proto.doc_string = "exported by keras_longformer.export.export_onnx"


def read_metadata(model_proto_or_session):
    """The `keras_longformer.*` metadata of an exported file, as a dict."""
    if hasattr(model_proto_or_session, "get_modelmeta"):
        props = model_proto_or_session.get_modelmeta().custom_metadata_map
    else:
        props = {p.key: p.value for p in model_proto_or_session.metadata_props}
    result = {}
    for key, value in props.items():
        if key.startswith(_METADATA_PREFIX):
            key = key[len(_METADATA_PREFIX):]
            with contextlib.suppress(ValueError):
                value = json.loads(value)
            result[key] = value
    return result


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------


def _save(model_proto, external_storage, directory, filename):
    """Writes `filename` (and `filename.data` for external data) in `directory`.

    Returns the external data file name, or None.
    """
    import onnx

    target = os.path.join(directory, filename)
    if external_storage is None:
        onnx.save_model(model_proto, target)
        return None
    # tf2onnx keeps large tensors in `external_storage`, referenced by name
    # from the proto: write them beside it, load them back into the proto
    # and save once more as a single external data file.
    staging = os.path.join(directory, "tensors")
    os.mkdir(staging)
    for location, data in external_storage.name_to_tensor_data.items():
        with open(os.path.join(staging, location), "wb") as handle:
            handle.write(data)
    onnx.external_data_helper.load_external_data_for_model(model_proto, staging)
    data_name = filename + ".data"
    onnx.save_model(
        model_proto,
        target,
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=data_name,
        size_threshold=1024,
    )
    for location in external_storage.name_to_tensor_data:
        os.remove(os.path.join(staging, location))
    os.rmdir(staging)
    return data_name


def _publish(source, destination, overwrite):
    """Moves `source` to `destination` atomically; never clobbers unless `overwrite`."""
    if overwrite:
        os.replace(source, destination)
        return
    try:
        os.link(source, destination)  # fails if destination exists, atomically
    except FileExistsError:
        raise FileExistsError(
            f"{destination!r} already exists (pass overwrite=True / --force to replace it)"
        ) from None
    except OSError:
        # Filesystems without hard links: check, then rename.
        if os.path.exists(destination):
            raise FileExistsError(
                f"{destination!r} already exists (pass overwrite=True / --force to replace it)"
            ) from None
        os.replace(source, destination)
        return
    os.remove(source)


# ---------------------------------------------------------------------------
# export_onnx
# ---------------------------------------------------------------------------


def export_onnx(
    model,
    output_path,
    *,
    opset=17,
    verify=True,
    lengths=None,
    overwrite=False,
    progress=False,
):
    """Exports a Keras model to one ONNX file, verified against Keras.

    The ONNX inputs are the model's input names (a backbone's `token_ids`,
    `padding_mask`, `global_mask`) and its outputs the model's output names
    (`sequence_output`, `pooled_output`, a task model's), with symbolic
    `batch` and `sequence` dimensions. Unless `verify=False`, the file is
    checked with `onnx.checker`, loaded in onnxruntime (CPU) and compared
    with Keras at every length of the sweep (1, 2, each attention window
    +- 1, a length longer than the traced one and a long one, or `lengths`)
    with no, first, middle and many global tokens, in batches whose rows
    have different padding. A case over 1e-4 (float32) fails the export
    with the table.

    The file is written to a temporary name in the same directory and
    renamed only once verified, so a failed or interrupted export never
    leaves a file under `output_path`, and an existing file is kept unless
    `overwrite`. Models over ~1.8 GB of weights are written with ONNX
    external data (`output_path + ".data"`).

    Args:
        model: a `keras.Model` (functional), or a path to a `.keras` file.
        output_path: path of the `.onnx` file to write. Its directory must
            exist.
        opset: ONNX opset, from 13 to the highest tf2onnx supports (18).
        verify: whether to run the verification sweep.
        lengths: optional sequence lengths to verify at, replacing the
            default sweep.
        overwrite: whether to replace an existing `output_path`.
        progress: whether to show a progress bar over the sweep.

    Returns:
        An `ExportReport`: path, opset, inputs and outputs with their dims,
        and one row per verified case (length, global pattern, max absolute
        error against Keras, onnxruntime seconds).

    Raises:
        ExportError: conversion left ops ONNX does not define, the checker
            or onnxruntime rejected the file, or verification failed
            (`error.report` holds the table).
        FileExistsError, FileNotFoundError, ValueError, UnknownLayerError:
            bad arguments, detected before any conversion.
    """
    top = max_opset()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= top:
        raise ValueError(
            f"`opset` must be an int from {MIN_OPSET} to {top} (the highest the "
            f"installed tf2onnx converts to). Received: opset={opset!r}"
        )
    if lengths is not None:
        lengths = list(lengths)
        if not lengths or any(
            isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1 for n in lengths
        ):
            raise ValueError(
                f"`lengths` must be a non-empty list of ints >= 1. Received: lengths={lengths!r}"
            )
        lengths = sorted(set(int(n) for n in lengths))
    output_path = os.path.abspath(os.fspath(output_path))
    directory, filename = os.path.split(output_path)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"Output directory does not exist: {directory!r}")
    if os.path.isdir(output_path):
        raise IsADirectoryError(f"Output path is a directory: {output_path!r}")
    if os.path.exists(output_path) and not overwrite:
        raise FileExistsError(
            f"{output_path!r} already exists (pass overwrite=True / --force to replace it)"
        )
    if isinstance(model, (str, os.PathLike)):
        model = load_keras_model(model)
    structure = model_structure(model)
    info = verify_lib.describe_model(model)
    if lengths is not None and info.max_sequence_length:
        too_long = [n for n in lengths if n > info.max_sequence_length]
        if too_long:
            raise ValueError(
                f"`lengths` {too_long} exceed the model's max_sequence_length "
                f"{info.max_sequence_length}"
            )
    _ensure_called(model, structure, info)

    large = _weight_bytes(model) > EXTERNAL_DATA_THRESHOLD
    model_proto, external_storage = convert(model, structure, opset=opset, large_model=large)
    bad = unconverted_ops(model_proto, opset)
    if bad:
        listed = ", ".join(f"{op} (x{count})" for op, count in sorted(bad.items()))
        hint = ""
        if "Erfc" in bad:
            hint = (
                " Exact GELU lowers to Erfc in TensorFlow; write it as "
                "0.5 * x * (1 + erf(x / sqrt(2))) to export."
            )
        raise ExportError(f"tf2onnx could not convert these ops to ONNX opset {opset}: {listed}.{hint}")
    _name_dims(model_proto, model, structure)
    _set_metadata(model_proto, info)
    inputs, outputs = _io_dims(model_proto)
    report = ExportReport(path=output_path, opset=opset, inputs=inputs, outputs=outputs)

    staging = tempfile.mkdtemp(prefix=f".{filename}.", suffix=".tmp", dir=directory)
    try:
        data_name = _save(model_proto, external_storage, staging, filename)
        del model_proto
        staged = os.path.join(staging, filename)
        if verify:
            report.rows = _verify(model, staged, structure, info, lengths, progress)
            failures = report.failures
            if failures:
                raise ExportError(
                    f"ONNX output differs from Keras in {len(failures)} of {len(report.rows)} "
                    f"cases (max abs error {report.max_abs_error:.3e}); nothing written to "
                    f"{output_path!r}\n{report.table()}",
                    report,
                )
            report.verified = True
        if data_name:
            data_path = os.path.join(directory, data_name)
            if os.path.exists(data_path) and not overwrite:
                raise FileExistsError(
                    f"{data_path!r} already exists (pass overwrite=True / --force to replace it)"
                )
            os.replace(os.path.join(staging, data_name), data_path)
            report.external_data = data_path
        _publish(staged, output_path, overwrite)
    finally:
        _remove_tree(staging)
    return report


def _verify(model, path, structure, info, lengths, progress):
    import onnx

    from keras_longformer.export.session import onnx_session

    try:
        onnx.checker.check_model(path, full_check=True)
    except Exception as error:
        raise ExportError(f"onnx.checker rejected the exported graph: {_one_line(error)}") from error
    try:
        session = onnx_session(path, provider="cpu")
    except Exception as error:
        raise ExportError(f"onnxruntime cannot load the exported graph: {_one_line(error)}") from error
    names = {value.name for value in session.get_inputs()}
    if names != set(structure.input_names):
        raise ExportError(
            f"ONNX inputs {sorted(names)} do not match the model's {structure.input_names}"
        )
    names = {value.name for value in session.get_outputs()}
    if names != set(structure.output_names):
        raise ExportError(
            f"ONNX outputs {sorted(names)} do not match the model's {structure.output_names}"
        )
    if lengths is None:
        lengths = verify_lib.default_lengths(info)
    try:
        return verify_lib.sweep(
            model, session, structure, lengths=lengths, info=info, progress=progress
        )
    except ExportError:
        raise
    except Exception as error:
        raise ExportError(f"Running the exported graph failed: {_one_line(error)}") from error


def _remove_tree(path):
    import shutil

    shutil.rmtree(path, ignore_errors=True)
