"""Names and specs of a Keras model's inputs and outputs, as the ONNX file has them."""

import dataclasses

import numpy as np

from keras_longformer.export import verify as verify_lib


# The names (and dtype) a Hugging Face tokenizer's output has.
HUGGINGFACE_INPUT_NAMES = {
    "token_ids": "input_ids",
    "padding_mask": "attention_mask",
    "global_mask": "global_attention_mask",
}
HUGGINGFACE_INPUT_DTYPE = "int64"
INPUT_NAMINGS = ("keras", "huggingface")


@dataclasses.dataclass
class ModelStructure:
    """Names and specs of a Keras model's inputs and outputs, and the names
    and dtypes the ONNX file gives them.

    Attributes:
        inputs_struct: the model's input structure (a dict or a list).
        input_names: the model's input names, in ONNX order.
        specs: model input name -> (shape with None, numpy dtype name).
        output_names: the output names, in ONNX order.
        onnx_names: model input name -> ONNX input name.
        onnx_dtypes: model input name -> ONNX input dtype (cast to the
            model's inside the graph).
        output_dtypes: output name -> the dtype the ONNX output has.
    """

    inputs_struct: object
    input_names: list
    specs: dict
    output_names: list
    onnx_names: dict = None
    onnx_dtypes: dict = None
    output_dtypes: dict = None

    def onnx_name(self, name):
        return (self.onnx_names or {}).get(name, name)

    @property
    def onnx_specs(self):
        """ONNX input name -> (shape, dtype), in ONNX order."""
        dtypes = self.onnx_dtypes or {}
        return {
            self.onnx_name(name): (shape, dtypes.get(name, dtype))
            for name, (shape, dtype) in self.specs.items()
        }


def model_structure(model, naming="keras"):
    """Input/output names and specs of a Keras model.

    Args:
        model: a functional `keras.Model`.
        naming: `"keras"` (the ONNX inputs have the model's own names and
            dtypes) or `"huggingface"` (`input_ids`, `attention_mask`,
            `global_attention_mask`, int64).
    """
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
    output_names = _output_names(model)
    structure = ModelStructure(
        inputs_struct, input_names, specs, output_names, output_dtypes=_output_dtypes(model)
    )
    if naming == "huggingface":
        _name_as_huggingface(structure)
    clashes = set(output_names) & set(structure.onnx_specs)
    if clashes:
        raise ValueError(f"Output names clash with input names: {sorted(clashes)}")
    return structure


def _name_as_huggingface(structure):
    if "token_ids" not in structure.specs:
        raise ValueError(
            "input_names='huggingface' renames the inputs token_ids, padding_mask and "
            "global_mask; this model has no token_ids. "
            f"Received: a model with inputs {structure.input_names}"
        )
    renamed = [name for name in structure.input_names if name in HUGGINGFACE_INPUT_NAMES]
    structure.onnx_names = {name: HUGGINGFACE_INPUT_NAMES[name] for name in renamed}
    structure.onnx_dtypes = {name: HUGGINGFACE_INPUT_DTYPE for name in renamed}
    taken = set(structure.input_names) - set(renamed)
    clashes = taken & set(structure.onnx_names.values())
    if clashes:
        raise ValueError(
            f"input_names='huggingface' would give two inputs the name(s) {sorted(clashes)}. "
            f"Received: a model with inputs {structure.input_names}"
        )


def _output_dtypes(model):
    """Output name -> the dtype of the model's output."""
    import keras
    from keras import tree

    outputs_struct = getattr(model, "_outputs_struct", None)
    names = _output_names(model)
    if isinstance(outputs_struct, dict):
        tensors = [outputs_struct[name] for name in names]
    else:
        tensors = tree.flatten(outputs_struct) if outputs_struct is not None else []
    if len(tensors) != len(names):
        return {}
    return {
        name: keras.backend.standardize_dtype(tensor.dtype) for name, tensor in zip(names, tensors)
    }


def _output_names(model):
    from keras import tree

    outputs_struct = getattr(model, "_outputs_struct", None)
    if isinstance(outputs_struct, dict):
        return list(outputs_struct)
    names = list(model.output_names)
    count = len(tree.flatten(outputs_struct)) if outputs_struct is not None else len(names)
    if len(names) != count:
        names = [f"output_{i}" for i in range(count)]
    if len(set(names)) != len(names):
        names = [f"{name}_{i}" for i, name in enumerate(names)]
    return names


def ensure_called(model, structure, info):
    """Calls a model that was never called once, on small dummy inputs
    (Keras refuses to trace a model that has never been called)."""
    if getattr(model, "_called", True):
        return
    inputs = verify_lib.make_inputs(
        structure.onnx_specs,
        min(verify_lib.TRACE_LENGTH, info.max_sequence_length or verify_lib.TRACE_LENGTH),
        "first",
        info,
        rng=np.random.default_rng(0),
        batch_size=2,
    )
    verify_lib.keras_outputs(model, inputs, structure, structure.output_names)


def weight_bytes(model):
    """Bytes of the model's weights as Keras holds them."""
    import keras

    total = 0
    for variable in model.weights:
        dtype = keras.backend.standardize_dtype(variable.dtype)
        itemsize = 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize
        total += int(np.prod(variable.shape)) * itemsize
    return total
