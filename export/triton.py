"""`write_triton_repository`: an exported ONNX file as a Triton Inference Server model.

Triton's onnxruntime backend reads a model repository laid out as

    REPOSITORY/NAME/config.pbtxt
    REPOSITORY/NAME/1/model.onnx        (+ its external data file, if any)

The config is generated from the file's own graph inputs and outputs (names,
element types, dims), read with `onnx` without loading the weights, so it
describes exactly the file that is served.
"""

import os
import re
import shutil
import tempfile

from keras_longformer.export import files as files_lib

INSTANCE_KINDS = {"gpu": "KIND_GPU", "cpu": "KIND_CPU"}
VERSION = "1"
MODEL_FILENAME = "model.onnx"  # the onnxruntime backend's default file name
# A model name is a directory name in the repository and part of request URLs.
_MODEL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")

# ONNX TensorProto element type names -> Triton model-config data types.
_TRITON_TYPES = {
    "BOOL": "TYPE_BOOL",
    "UINT8": "TYPE_UINT8",
    "UINT16": "TYPE_UINT16",
    "UINT32": "TYPE_UINT32",
    "UINT64": "TYPE_UINT64",
    "INT8": "TYPE_INT8",
    "INT16": "TYPE_INT16",
    "INT32": "TYPE_INT32",
    "INT64": "TYPE_INT64",
    "FLOAT16": "TYPE_FP16",
    "FLOAT": "TYPE_FP32",
    "DOUBLE": "TYPE_FP64",
    "BFLOAT16": "TYPE_BF16",
    "STRING": "TYPE_STRING",
}


def write_triton_repository(
    onnx_path,
    repository,
    *,
    model_name=None,
    max_batch_size=8,
    instance_kind="gpu",
    overwrite=False,
):
    """Writes an ONNX file as a model of a Triton Inference Server repository.

    Creates `repository/model_name/1/model.onnx` (a copy of `onnx_path`,
    with its external data file beside it when it has one) and
    `repository/model_name/config.pbtxt` for Triton's `onnxruntime`
    backend: every graph input and output with its Triton data type
    (`int32` -> `TYPE_INT32`, `bool` -> `TYPE_BOOL`, `float16` ->
    `TYPE_FP16`, ...) and dims, symbolic dims (`batch`, `sequence`) as
    `-1`; dynamic batching and one instance of `instance_kind`.

    With `max_batch_size > 0`, the first dimension of every input and output
    must be the (dynamic) batch and is left out of `dims`, as Triton wants;
    Triton's dynamic batcher then groups requests of the same shape (the
    same sequence length) into batches of up to `max_batch_size`. With
    `max_batch_size=0` the dims are the full shapes and there is no dynamic
    batching.

    The model directory is built in a hidden temporary directory inside
    `repository` and renamed into place, so an interrupted call never leaves
    a half-written model under `model_name`. An existing model directory is
    kept unless `overwrite`; with it, the old directory is moved aside,
    the new one renamed in, then the old one removed.

    Args:
        onnx_path: path of an `.onnx` file, e.g. one written by
            `export_onnx`.
        repository: the model repository directory (Triton's
            `--model-repository`); created if missing.
        model_name: the model's name in Triton (its directory name): letters,
            digits, `_`, `.` and `-`, not starting with `.` or `-`. Defaults to
            the file name without `.onnx`.
        max_batch_size: int >= 0, Triton's `max_batch_size`.
        instance_kind: `"gpu"` (`KIND_GPU`) or `"cpu"` (`KIND_CPU`).
        overwrite: whether to replace an existing model directory.

    Returns:
        The path of the model directory, `repository/model_name`.

    Raises:
        ValueError: a bad argument (naming it), or a file whose inputs or
            outputs Triton cannot describe. FileNotFoundError: no file at
            `onnx_path`, or a missing external data file. FileExistsError:
            the model directory exists and `overwrite` is false. All are
            raised before anything is written.

    Example:

    ```python
    from keras_longformer.export import write_triton_repository

    write_triton_repository("model.onnx", "models", model_name="longformer")
    # models/longformer/config.pbtxt, models/longformer/1/model.onnx
    ```
    """
    if instance_kind not in INSTANCE_KINDS:
        raise ValueError(
            f"`instance_kind` must be one of {tuple(INSTANCE_KINDS)}. "
            f"Received: instance_kind={instance_kind!r}"
        )
    if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 0:
        raise ValueError(
            f"`max_batch_size` must be an int >= 0. Received: max_batch_size={max_batch_size!r}"
        )
    onnx_path = os.path.abspath(os.fspath(onnx_path))
    if not os.path.isfile(onnx_path):
        raise FileNotFoundError(f"No ONNX file at onnx_path. Received: onnx_path={onnx_path!r}")
    model_name = _checked_model_name(model_name, onnx_path)
    repository = os.path.abspath(os.fspath(repository))
    if os.path.exists(repository) and not os.path.isdir(repository):
        raise ValueError(
            f"`repository` must be a directory. Received: repository={repository!r} (a file)"
        )
    target = os.path.join(repository, model_name)
    if os.path.lexists(target) and not overwrite:
        raise FileExistsError(
            f"{target!r} already exists (pass overwrite=True / --force to replace it)"
        )

    proto = _load_graph(onnx_path)
    config = triton_config(proto, model_name, max_batch_size, instance_kind, source=onnx_path)
    data_files = external_data_files(proto, onnx_path)

    os.makedirs(repository, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{model_name}.", suffix=".tmp", dir=repository)
    try:
        version = os.path.join(staging, VERSION)
        os.mkdir(version)
        shutil.copyfile(onnx_path, os.path.join(version, MODEL_FILENAME))
        for location, source in data_files.items():
            destination = os.path.join(version, location)
            os.makedirs(os.path.dirname(destination), exist_ok=True)
            shutil.copyfile(source, destination)
        with open(os.path.join(staging, "config.pbtxt"), "w") as handle:
            handle.write(config)
        files_lib.publish_directory(staging, target, overwrite)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging)
    return target


def _checked_model_name(model_name, onnx_path):
    derived = model_name is None
    if derived:
        model_name = os.path.basename(onnx_path)
        if model_name.endswith(".onnx"):
            model_name = model_name[: -len(".onnx")]
    if not isinstance(model_name, str) or not _MODEL_NAME.match(model_name):
        hint = f" (derived from the file name {os.path.basename(onnx_path)!r}; pass model_name)"
        raise ValueError(
            "`model_name` must be letters, digits, '_', '.' or '-', not starting with "
            f"'.' or '-'. Received: model_name={model_name!r}" + (hint if derived else "")
        )
    return model_name


def _load_graph(onnx_path):
    """The ModelProto without its weights (external data is not read)."""
    import onnx

    try:
        return onnx.load(onnx_path, load_external_data=False)
    except Exception as error:  # protobuf's DecodeError and friends
        first = str(error).strip().splitlines()[:1] or [type(error).__name__]
        raise ValueError(
            f"`onnx_path` is not a readable ONNX file ({first[0]}). "
            f"Received: onnx_path={onnx_path!r}"
        ) from None


# ---------------------------------------------------------------------------
# config.pbtxt
# ---------------------------------------------------------------------------


def graph_signature(proto):
    """(inputs, outputs) of a ModelProto: lists of (name, onnx type name, dims),
    dims as ints with -1 for symbolic or unknown ones; dims is None when the
    rank is unknown. Initializers listed as inputs (old IR versions) are skipped."""
    import onnx

    initializers = {tensor.name for tensor in proto.graph.initializer}

    def describe(value):
        tensor_type = value.type.tensor_type
        type_name = onnx.TensorProto.DataType.Name(tensor_type.elem_type)
        if not tensor_type.HasField("shape"):
            return value.name, type_name, None
        dims = [dim.dim_value if dim.HasField("dim_value") else -1 for dim in tensor_type.shape.dim]
        return value.name, type_name, dims

    inputs = [describe(v) for v in proto.graph.input if v.name not in initializers]
    outputs = [describe(v) for v in proto.graph.output]
    return inputs, outputs


def triton_config(proto, model_name, max_batch_size, instance_kind, *, source=""):
    """The text of config.pbtxt (Triton's ModelConfig text format) for `proto`."""
    from keras_longformer.export import read_metadata

    inputs, outputs = graph_signature(proto)
    lines = [f"# Written by keras_longformer.export.write_triton_repository from {source}"]
    max_length = read_metadata(proto).get("max_sequence_length")
    if isinstance(max_length, int):
        lines.append(f"# Sequences up to {max_length} tokens (max_sequence_length).")
    lines += [
        f'name: "{model_name}"',
        'backend: "onnxruntime"',
        f"max_batch_size: {max_batch_size}",
    ]
    for section, values in (("input", inputs), ("output", outputs)):
        entries = [_tensor_entry(section, value, max_batch_size) for value in values]
        lines.append(f"{section} [\n" + ",\n".join(entries) + "\n]")
    if max_batch_size > 0:
        lines.append("dynamic_batching { }")
    lines.append(f"instance_group [\n  {{\n    count: 1\n    kind: {INSTANCE_KINDS[instance_kind]}\n  }}\n]")
    return "\n".join(lines) + "\n"


def _tensor_entry(section, value, max_batch_size):
    name, type_name, dims = value
    if type_name not in _TRITON_TYPES:
        raise ValueError(
            f"Triton has no data type for the {section} {name!r} of ONNX type {type_name}"
        )
    if dims is None:
        raise ValueError(f"The {section} {name!r} has no known rank; Triton needs its dims")
    if max_batch_size > 0:
        if not dims or dims[0] != -1:
            raise ValueError(
                f"`max_batch_size` > 0 needs a dynamic first (batch) dimension on every input "
                f"and output, but the {section} {name!r} has dims {dims}. Pass max_batch_size=0 "
                f"for this file. Received: max_batch_size={max_batch_size}"
            )
        dims = dims[1:]
    dims_text = ", ".join(str(dim) for dim in dims)
    return (
        f'  {{\n    name: "{name}"\n    data_type: {_TRITON_TYPES[type_name]}\n'
        f"    dims: [ {dims_text} ]\n  }}"
    )


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------


def external_data_files(proto, onnx_path):
    """{location: absolute path} of the external data files `proto` refers to.

    Locations are relative to the model's directory and must stay inside it
    (ONNX's own rule); each file must exist.
    """
    from onnx.external_data_helper import ExternalDataInfo
    from onnx.external_data_helper import uses_external_data

    directory = os.path.dirname(onnx_path)
    files = {}
    for tensor in _all_tensors(proto.graph):
        if not uses_external_data(tensor):
            continue
        location = ExternalDataInfo(tensor).location
        normalized = os.path.normpath(location)
        escapes = normalized == os.pardir or normalized.startswith(os.pardir + os.sep)
        if os.path.isabs(location) or escapes:
            raise ValueError(
                f"`onnx_path` refers to external data outside its directory ({location!r}). "
                f"Received: onnx_path={onnx_path!r}"
            )
        path = os.path.join(directory, normalized)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"The external data file {location!r} of {onnx_path!r} is missing: {path!r}"
            )
        files[normalized] = path
    if MODEL_FILENAME in files:
        raise ValueError(
            f"The external data file of {onnx_path!r} is named {MODEL_FILENAME!r}, the name "
            "the model itself takes in a Triton repository"
        )
    return files


def _all_tensors(graph):
    """Every TensorProto of `graph`: initializers and node attributes, subgraphs included."""
    yield from graph.initializer
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _all_tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from _all_tensors(subgraph)


# ---------------------------------------------------------------------------
# `keras-longformer triton` (wired in keras_longformer/cli/main.py)
# ---------------------------------------------------------------------------

DESCRIPTION = (
    "Write an ONNX file as a model of a Triton Inference Server repository: "
    "REPOSITORY/NAME/1/model.onnx (with its external data) and REPOSITORY/NAME/config.pbtxt "
    "for the onnxruntime backend, generated from the file's inputs and outputs."
)


def add_arguments(parser):
    parser.add_argument("onnx", help="path of the .onnx file")
    parser.add_argument("repository", help="model repository directory (created if missing)")
    parser.add_argument("--name", default=None, help="model name (default: the file name without .onnx)")
    parser.add_argument(
        "--max-batch-size", type=int, default=8,
        help="Triton's max_batch_size; 0 disables batching (default 8)",
    )
    parser.add_argument(
        "--instance-kind", choices=tuple(INSTANCE_KINDS), default="gpu",
        help="where Triton runs the model (default gpu)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing model directory")


def run_from_arguments(args):
    target = write_triton_repository(
        args.onnx,
        args.repository,
        model_name=args.name,
        max_batch_size=args.max_batch_size,
        instance_kind=args.instance_kind,
        overwrite=args.force,
    )
    with open(os.path.join(target, "config.pbtxt")) as handle:
        print(handle.read().rstrip())
    files = sorted(os.listdir(os.path.join(target, VERSION)))
    print(f"wrote {target} (config.pbtxt, {VERSION}/{', '.join(files)})")
    return {"model_directory": target, "files": ["config.pbtxt"] + [f"{VERSION}/{f}" for f in files]}
