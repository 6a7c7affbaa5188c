"""The precisions an export can be written in: float32, float16 (GPU serving), int8 (CPU serving).

float16 is made by rebuilding the Keras model under a float16 dtype policy
and converting that, rather than by converting a float32 graph after the
fact (`onnxruntime.transformers.float16`): the layers themselves then decide
what stays float32. The attention op casts its scores to float32 before
adding its mask bias (-1e9, not finite in float16) and taking the softmax,
and Keras's LayerNormalization computes in float32; an after-the-fact
converter would turn those scores, the -1e9 and the softmax to float16
unless each of those nodes were found and blocked by hand. Weights and
matrix products are float16; inputs keep their integer types and outputs
are cast back to the float32 model's dtypes.

int8 is onnxruntime's dynamic quantization (`quantize_dynamic`) of the
weight of every `MatMul` (projections, feed-forward, heads, tied decoder)
and `Gather` (token and position embeddings) of the float32 graph: int8
weights, activations quantized at run time, everything else float32.
Weights use 7 bits (`reduce_range`): x86 CPUs without VNNI multiply
uint8 activations by int8 weights with an instruction (VPMADDUBSW) whose
16-bit sums saturate at full range; measured on a small masked LM here,
8-bit weights gave 0.15-0.21 of the logits' scale and 88% argmax
agreement, 7-bit 0.015-0.02 and 97-100%.
"""

from keras_longformer.export.errors import one_line

PRECISIONS = ("float32", "float16", "int8")


def check_precision(precision):
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ValueError(
            f"`precision` must be one of {', '.join(repr(p) for p in PRECISIONS)}. "
            f"Received: precision={precision!r}"
        )


def float16_copy(model):
    """`model` rebuilt with its float32 dtype policies as float16, same weights.

    Raises:
        ValueError: the model cannot be rebuilt from its config.
    """
    import keras

    try:
        config = _as_float16(keras.saving.serialize_keras_object(model))
        copy = keras.saving.deserialize_keras_object(config)
        copy.set_weights(model.get_weights())  # cast to float16 on assignment
    except Exception as error:
        raise ValueError(
            f"precision='float16' rebuilds the model from its config under a float16 "
            f"dtype policy, and {model.name!r} could not be: {one_line(error)}"
        ) from error
    return copy


def _as_float16(node):
    """A serialized config with every float32 `DTypePolicy` made float16."""
    if isinstance(node, dict):
        if node.get("class_name") == "DTypePolicy" and node.get("config", {}).get("name") == "float32":
            return {**node, "config": {**node["config"], "name": "float16"}}
        return {key: _as_float16(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_as_float16(value) for value in node]
    return node


def weight_nodes(model_proto):
    """Names of the `MatMul` and `Gather` nodes that read a weight (an initializer)."""
    initializers = {tensor.name for tensor in model_proto.graph.initializer}
    names = []
    for node in model_proto.graph.node:
        if node.op_type == "MatMul" and node.input[1] in initializers:
            names.append(node.name)
        elif node.op_type == "Gather" and node.input[0] in initializers:
            names.append(node.name)
    return names


def quantize_int8(float32_path, int8_path, *, external_data):
    """onnxruntime's dynamic int8 quantization of every weight `MatMul` and `Gather`.

    Returns the names of the quantized nodes.
    """
    import onnx
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization import quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    # onnxruntime's own pre-processing (shape inference, and the metadata
    # quantize_dynamic asks for); its graph optimizations are left to the
    # session, which would otherwise fold our MatMuls back into Gemms.
    prepared = int8_path + ".prepared.onnx"
    quant_pre_process(
        float32_path,
        prepared,
        skip_optimization=True,
        skip_symbolic_shape=True,
        save_as_external_data=external_data,
        all_tensors_to_one_file=True,
        external_data_location=None if not external_data else _base(prepared) + ".data",
    )
    nodes = weight_nodes(onnx.load(prepared, load_external_data=False))
    quantize_dynamic(
        prepared,
        int8_path,
        op_types_to_quantize=["MatMul", "Gather"],
        nodes_to_quantize=nodes,
        weight_type=QuantType.QInt8,
        per_channel=False,
        reduce_range=True,  # 7-bit weights: no saturation without VNNI (see above)
        use_external_data_format=external_data,
        extra_options={"MatMulConstBOnly": True},
    )
    return nodes


def _base(path):
    import os

    return os.path.basename(path)
