"""Small models and shared conversions for the export tests.

tf2onnx takes seconds per conversion, so each model is converted once per
test process (`converted`), and tests that only need a graph reuse it by
replacing the conversion with a copy (`reuse_graph`).
"""

import copy

import keras
import numpy as np

import keras_longformer
import keras_longformer.models as models
from keras_longformer.export import conversion as conversion_lib
from helpers import max_abs_error

WINDOWS = (3, 5)
DILATION = (1, 2)
HIDDEN = 16
VOCABULARY = 50
# Max absolute error of a float32 export against Keras.
FLOAT32_TOLERANCE = 1e-5


def build_small_model():
    """Embedding -> two LongformerSelfAttention -> three outputs, two of the
    same shape (so a swapped output mapping cannot pass unnoticed)."""
    keras.utils.set_random_seed(0)
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    padding_mask = keras.Input((None,), dtype="bool", name="padding_mask")
    global_mask = keras.Input((None,), dtype="bool", name="global_mask")
    x = keras.layers.Embedding(VOCABULARY, HIDDEN, name="token_embedding")(token_ids)
    x = keras_longformer.LongformerSelfAttention(2, 8, window=WINDOWS[0], name="attention_0")(
        x, padding_mask=padding_mask, global_mask=global_mask
    )
    x = keras_longformer.LongformerSelfAttention(
        2, 8, window=WINDOWS[1], dilation=list(DILATION), name="attention_1"
    )(x, padding_mask=padding_mask, global_mask=global_mask)
    outputs = {
        "sequence_output": keras.layers.Dense(HIDDEN, name="sequence_dense")(x),
        "other_output": keras.layers.Dense(HIDDEN, name="other_dense")(x),
        "pooled_output": keras.layers.Dense(4, name="pooled_dense")(x[:, 0]),
    }
    return keras.Model(
        {"token_ids": token_ids, "padding_mask": padding_mask, "global_mask": global_mask},
        outputs,
    )


def tiny_backbone(*, seed=1, causal=False, window=(2, 4), dilation=(1, (1, 2)), vocabulary=120):
    """A freshly built (never called) two-layer backbone, the second layer dilated."""
    keras.utils.set_random_seed(seed)
    return models.LongformerBackbone(
        vocabulary_size=vocabulary,
        num_layers=len(window),
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        window=list(window),
        dilation=[list(d) if isinstance(d, tuple) else d for d in dilation],
        causal=causal,
        max_sequence_length=160,
    )


def random_inputs(rng, length, batch=3, vocabulary=VOCABULARY, pad_id=None):
    """Rows of different padding with a few global tokens; pad ids where padded."""
    padding = np.ones((batch, length), bool)
    if batch > 1:
        padding[1, max(1, length - 3):] = False
    if batch > 2:
        padding[2, max(1, length // 3):] = False
    global_mask = rng.random((batch, length)) < 0.1
    global_mask[:, 0] = True
    token_ids = rng.integers(3, vocabulary, (batch, length))
    if pad_id is not None:
        token_ids = np.where(padding, token_ids, pad_id)
    return {
        "token_ids": token_ids.astype("int32"),
        "padding_mask": padding,
        "global_mask": global_mask,
    }


def keras_outputs(model, feeds):
    """`model` on numpy `feeds`, as {output name: numpy array}."""
    outputs = model(feeds, training=False)
    if not isinstance(outputs, dict):
        outputs = dict(zip(model.output_names, keras.tree.flatten(outputs)))
    return {name: np.asarray(value) for name, value in outputs.items()}


def session_outputs(session, feeds):
    """An onnxruntime session on `feeds` (cast to the file's input types)."""
    from keras_longformer.export.dtypes import numpy_dtype

    cast = {
        value.name: np.asarray(feeds[value.name]).astype(numpy_dtype(value.type))
        for value in session.get_inputs()
    }
    names = [value.name for value in session.get_outputs()]
    return dict(zip(names, session.run(names, cast)))



_CONVERTED = {}


def converted(name="small"):
    """(model, ModelProto) of a named model, converted once per process."""
    from keras_longformer.export import structure as structure_lib
    from keras_longformer.export import verify as verify_lib

    if name not in _CONVERTED:
        model = {"small": build_small_model}[name]()
        structure = structure_lib.model_structure(model)
        structure_lib.ensure_called(model, structure, verify_lib.describe_model(model))
        _CONVERTED[name] = (model, conversion_lib.convert(model, structure, opset=17, large_model=False))
    return _CONVERTED[name]


def reuse_graph(monkeypatch, name="small"):
    """Makes `export_onnx` of the named model skip tf2onnx (reuses its graph);
    returns the model."""
    model, graph = converted(name)
    monkeypatch.setattr(conversion_lib, "convert", lambda *args, **kwargs: copy.deepcopy(graph))
    return model


def keras_outputs_off_by_a_little(monkeypatch, output="other_output", delta=1e-3):
    """Makes the verification's Keras side answer `delta` off on `output`,
    so that an export fails its verification (10x the float32 tolerance)."""
    from keras_longformer.export import verify as verify_lib

    real = verify_lib.keras_outputs

    def off_by_a_little(*args, **kwargs):
        outputs = real(*args, **kwargs)
        outputs[output] = outputs[output] + delta
        return outputs

    monkeypatch.setattr(verify_lib, "keras_outputs", off_by_a_little)
