"""onnxruntime's type names (`"tensor(float16)"`) as numpy dtypes: the one map.

Built on ONNX's own table (`onnx.helper.tensor_dtype_to_np_dtype`), so every
type ONNX defines is covered without a hand-written copy.
"""

import numpy as np


def numpy_dtype(ort_type):
    """onnxruntime's `"tensor(int64)"` -> numpy's dtype name, `"int64"`.

    Raises:
        ValueError: `ort_type` is not a tensor type numpy can hold.
    """
    import onnx

    text = str(ort_type)
    name = text.removeprefix("tensor(").removesuffix(")")
    # onnxruntime says "float" and "double" where ONNX's enum says FLOAT, DOUBLE.
    try:
        elem_type = onnx.TensorProto.DataType.Value(name.upper())
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).name
    except (ValueError, KeyError, TypeError):
        raise ValueError(
            f"No numpy dtype for the onnxruntime type {text!r}. Received: ort_type={ort_type!r}"
        ) from None


def input_specs(session):
    """`{name: (shape, numpy dtype name)}` of an onnxruntime session's inputs;
    symbolic dims are None."""
    return {
        value.name: (
            tuple(d if isinstance(d, int) else None for d in value.shape),
            numpy_dtype(value.type),
        )
        for value in session.get_inputs()
    }
