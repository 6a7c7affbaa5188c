"""tf2onnx conversion of a Keras model: named inputs and outputs, symbolic `batch` and `sequence`."""

import contextlib
import logging
import os

# tf2onnx 1.17 converts up to opset 18; the attention graph needs opset 13
# (ReduceSum with axes as an input, Unsqueeze/Squeeze with axes inputs).
MIN_OPSET = 13


def max_opset():
    """The highest opset the installed tf2onnx converts to."""
    from tf2onnx import constants

    return max(constants.OPSET_TO_IR_VERSION)


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


@contextlib.contextmanager
def _numpy2_names_for_tf2onnx():
    """tf2onnx 1.17 calls `np.product` (removed in numpy 2.0) when it keeps
    large tensors outside the graph: lend it `np.prod` for the conversion only."""
    import numpy as np

    lent = not hasattr(np, "product")
    if lent:
        np.product = np.prod
    try:
        yield
    finally:
        if lent:
            del np.product


# tf2onnx deep-copies its whole graph before each optimizer pass (about 50
# passes), so that a pass that raises can be skipped: that is 60% of the
# conversion of a small model. Set to "FALSE", the variable runs the passes
# on the graph itself (tf2onnx 1.17 takes any value for false, a version
# that reads the value takes this one for false too); should a pass raise,
# `convert` converts again with the copies.
_CATCH_ERRORS_VARIABLE = "TF2ONNX_CATCH_ERRORS"


@contextlib.contextmanager
def _optimizer_passes_without_copies():
    if _CATCH_ERRORS_VARIABLE in os.environ:  # the user's own choice stands
        yield
        return
    os.environ[_CATCH_ERRORS_VARIABLE] = "FALSE"
    try:
        yield
    finally:
        os.environ.pop(_CATCH_ERRORS_VARIABLE, None)


@contextlib.contextmanager
def _optimizer_passes_without_proto_copies():
    """tf2onnx rewrites every node's protobuf after each of its ~50 optimizer
    passes, copying every constant (every weight) into it again; the
    protobuf runtime keeps the replaced copies until the graph is freed, so
    a conversion held about 55 copies of each weight (a 50,265-token
    embedding: 12 GiB for a one-layer model). `make_graph` writes the protos
    once at the end, and no pass reads them: the passes skip the rewrite."""
    from tf2onnx.optimizer.optimizer_base import GraphOptimizerBase

    original = GraphOptimizerBase.optimize

    def optimize(self, graph, iteration):
        before = graph.dump_node_statistics()
        self.opt_iteration = iteration
        graph = self._optimize(graph)
        graph.delete_unused_nodes(graph.outputs)
        self._print_stat_diff(before, graph.dump_node_statistics())
        return graph

    GraphOptimizerBase.optimize = optimize
    try:
        yield
    finally:
        GraphOptimizerBase.optimize = original


def _serving_function(model, structure):
    """A tf.function taking the ONNX inputs by name (cast to the model's
    dtypes) and returning the ONNX outputs by name (cast to
    `structure.output_dtypes`, so a float16 graph still answers float32)."""
    import tensorflow as tf
    from keras import tree

    onnx_names = list(structure.onnx_specs)
    output_dtypes = structure.output_dtypes or {}

    def as_output(name, tensor):
        dtype = output_dtypes.get(name)
        if dtype is not None and tensor.dtype != tf.as_dtype(dtype):
            return tf.cast(tensor, dtype)
        return tf.identity(tensor)

    @tf.function
    def serve(*flat_inputs):
        by_name = dict(zip(onnx_names, flat_inputs))
        ordered = []
        for name in structure.input_names:
            tensor = by_name[structure.onnx_name(name)]
            dtype = tf.as_dtype(structure.specs[name][1])
            if tensor.dtype != dtype:
                # 0/1 ints as bool masks mean "!= 0", as a Hugging Face mask does.
                tensor = tf.not_equal(tensor, 0) if dtype == tf.bool else tf.cast(tensor, dtype)
            ordered.append(tensor)
        outputs = model(tree.pack_sequence_as(structure.inputs_struct, ordered), training=False)
        if isinstance(outputs, dict):
            return {name: as_output(name, outputs[name]) for name in structure.output_names}
        flat_outputs = tree.flatten(outputs)
        return {name: as_output(name, t) for name, t in zip(structure.output_names, flat_outputs)}

    return serve


def convert(model, structure, *, opset, large_model):
    """tf2onnx conversion of `model`: an `onnx.ModelProto` with every tensor
    inline (tf2onnx's external storage of a large model is read back in, so
    later steps see one proto whatever the size; `files.save` writes it).

    `large_model` makes tf2onnx keep the weights out of the TensorFlow graph
    it converts (TensorFlow cannot hold a graph over 2 GB).
    """
    import tensorflow as tf

    signature = [
        tf.TensorSpec(shape, dtype=dtype, name=name)
        for name, (shape, dtype) in structure.onnx_specs.items()
    ]
    return convert_function(
        lambda: _serving_function(model, structure), signature, opset=opset, large_model=large_model
    )


def convert_function(make_function, signature, *, opset, large_model=False):
    """tf2onnx conversion of the `tf.function` `make_function()` returns
    (made inside the conversion's settings) for the `tf.TensorSpec`s of
    `signature`: an `onnx.ModelProto` with every tensor inline."""
    from keras_longformer.ops.windowed import all_heads_at_once

    # Every head in one batched op: onnxruntime runs that 1.5x faster than
    # TensorFlow's head-by-head chains.
    with _numpy2_names_for_tf2onnx(), _quiet_tf2onnx(), all_heads_at_once(), \
            _optimizer_passes_without_proto_copies():
        import tf2onnx

        def from_function():
            return tf2onnx.convert.from_function(
                make_function(), signature, opset=opset, large_model=large_model
            )

        try:
            with _optimizer_passes_without_copies():
                proto, storage = from_function()
        except Exception:  # noqa: BLE001  (converted again the careful way, which raises its own)
            proto, storage = from_function()
    if storage is not None:
        _inline_external_tensors(proto, storage.name_to_tensor_data)
    return proto


def _inline_external_tensors(model_proto, data_by_location):
    """Moves tf2onnx's externally stored tensors back into `model_proto`."""
    import onnx

    tensors = list(model_proto.graph.initializer)
    for node in model_proto.graph.node:
        tensors.extend(attribute.t for attribute in node.attribute if attribute.HasField("t"))
    for tensor in tensors:
        if not onnx.external_data_helper.uses_external_data(tensor):
            continue
        location = {entry.key: entry.value for entry in tensor.external_data}["location"]
        tensor.raw_data = data_by_location[location]
        del tensor.external_data[:]
        tensor.data_location = onnx.TensorProto.DEFAULT


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
    """Output dims from two symbolic calls of the model at different sizes:
    output name -> one entry per axis, "batch" or "sequence" (following
    those sizes), an int (the same in both) or None."""
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
            out = model.compute_output_spec(tree.pack_sequence_as(structure.inputs_struct, flat))
        except Exception:  # a model that cannot say: dims keep generic names
            return {}
        if isinstance(out, dict):
            shapes = {name: tuple(out[name].shape) for name in structure.output_names}
        else:
            shapes = {
                name: tuple(t.shape) for name, t in zip(structure.output_names, tree.flatten(out))
            }
        probes.append(shapes)
    names = {}
    for name in structure.output_names:
        first, second = probes[0].get(name), probes[1].get(name)
        if first is None or second is None or len(first) != len(second):
            continue
        names[name] = [
            "batch" if (a, b) == (2, 3)
            else "sequence" if (a, b) == (5, 7)
            else a if a == b and isinstance(a, int)
            else None
            for a, b in zip(first, second)
        ]
    return names


def name_dims(model_proto, model, structure):
    """Readable symbolic dims ('batch', 'sequence') in place of tf2onnx's 'unk__N'."""
    probed = _dims_from_probe(model, structure)
    onnx_specs = structure.onnx_specs
    for value in model_proto.graph.input:
        shape = onnx_specs.get(value.name, ((),))[0]
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
        _set_output_dims(value, probed.get(value.name))


def _set_output_dims(value, probed):
    """An output's dims as Keras states them (tf2onnx may leave the shape,
    or a static size, unknown); readable names for what stays unknown."""
    tensor_type = value.type.tensor_type
    agrees = not tensor_type.HasField("shape") or len(tensor_type.shape.dim) == len(probed or ())
    if probed is not None and agrees:
        tensor_type.shape.SetInParent()
        while len(tensor_type.shape.dim) < len(probed):
            tensor_type.shape.dim.add()
        for dim, known in zip(tensor_type.shape.dim, probed):
            if isinstance(known, int):
                dim.dim_value = known
            elif known is not None:
                dim.dim_param = known
    for axis, dim in enumerate(tensor_type.shape.dim):
        if not dim.HasField("dim_value") and (not dim.dim_param or dim.dim_param.startswith("unk__")):
            dim.dim_param = f"{value.name}_dim{axis}"


def io_dims(model_proto):
    """(inputs, outputs): name -> {"dims": [...], "dtype": numpy dtype name}."""
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
