"""Every model kind exported and compared with Keras directly (not through
the export's own report), with the batch size and the length changing
between calls of one session; the classifier with Hugging Face input names,
fed by a Hugging Face tokenizer; and the exported graph itself inspected:
standard ONNX that `onnx.reference` runs, masks as additive biases."""

import collections

import keras
import numpy as np
import onnx
import pytest

import export_fixtures as fx
import keras_longformer.models as models
from keras_longformer.export import export_onnx
from keras_longformer.export import onnx_session
from keras_longformer.export import read_metadata
from keras_longformer.export import conversion as conversion_lib

VOCABULARY = 60
PAD_ID = 1
MAX_LENGTH = 96
NUM_CLASSES = 3
# (batch, length) pairs run one after the other on the same session.
SHAPES = [(1, 3), (4, 17), (2, 40), (3, 9), (1, 64)]


def backbone(seed, causal=False):
    keras.utils.set_random_seed(seed)
    return models.LongformerBackbone(
        vocabulary_size=VOCABULARY,
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        window=3,
        dilation=[[1, 2]],  # one plain and one dilated head
        causal=causal,
        max_sequence_length=MAX_LENGTH,
    )


KINDS = {
    "backbone": lambda: backbone(10),
    "classifier": lambda: models.LongformerClassifier(backbone(11), num_classes=NUM_CLASSES),
    "token_classifier": lambda: models.LongformerTokenClassifier(
        backbone(12), num_classes=NUM_CLASSES
    ),
    "masked_lm": lambda: models.LongformerMaskedLM(backbone(13)),
    "question_answering": lambda: models.LongformerQuestionAnswering(backbone(14)),
    "causal_lm": lambda: models.LongformerCausalLM(backbone(15, causal=True)),
}
OUTPUTS = {
    "backbone": {"sequence_output": ["batch", "sequence", 16], "pooled_output": ["batch", 16]},
    "classifier": {"logits": ["batch", NUM_CLASSES]},
    "token_classifier": {"logits": ["batch", "sequence", NUM_CLASSES]},
    "masked_lm": {"logits": ["batch", "sequence", VOCABULARY]},
    "question_answering": {"start_logits": ["batch", "sequence"], "end_logits": ["batch", "sequence"]},
    "causal_lm": {"logits": ["batch", "sequence", VOCABULARY]},
}


_EXPORTS = {}


# The classifier's file takes Hugging Face's input names (one conversion
# serves both checks).
INPUT_NAMES = {"classifier": "huggingface"}
HUGGINGFACE_NAMES = {
    "token_ids": "input_ids", "padding_mask": "attention_mask",
    "global_mask": "global_attention_mask",
}


def export_kind(kind, tmp_path_factory):
    """The kind, freshly built (never called), exported once per module."""
    if kind not in _EXPORTS:
        model = KINDS[kind]()
        path = tmp_path_factory.mktemp(kind) / f"{kind}.onnx"
        report = export_onnx(
            model, path, lengths=[2, 9], input_names=INPUT_NAMES.get(kind, "keras")
        )
        _EXPORTS[kind] = (kind, model, path, report)
    return _EXPORTS[kind]


def onnx_feeds(kind, feeds):
    """Keras-named feeds under the file's names."""
    if INPUT_NAMES.get(kind) == "huggingface":
        return {HUGGINGFACE_NAMES[name]: value for name, value in feeds.items()}
    return feeds


@pytest.fixture(scope="module", params=sorted(KINDS))
def exported(request, tmp_path_factory):
    return export_kind(request.param, tmp_path_factory)


def feeds_for(rng, batch, length):
    return fx.random_inputs(rng, length, batch=batch, vocabulary=VOCABULARY, pad_id=PAD_ID)


def test_onnxruntime_matches_keras_as_batch_and_length_change(exported):
    kind, model, path, report = exported
    assert {name: spec["dims"] for name, spec in report.outputs.items()} == OUTPUTS[kind]
    session = onnx_session(path, provider="cpu")
    rng = np.random.default_rng(0)
    for batch, length in SHAPES:
        feeds = feeds_for(rng, batch, length)
        expected = fx.keras_outputs(model, feeds)
        actual = fx.session_outputs(session, onnx_feeds(kind, feeds))
        assert set(actual) == set(expected) == set(OUTPUTS[kind])
        for name in expected:
            error = fx.max_abs_error(expected[name], actual[name])
            assert error <= fx.FLOAT32_TOLERANCE, (kind, name, batch, length, error)
            assert np.isfinite(actual[name]).all()


def test_past_the_maximum_length_onnxruntime_refuses(exported):
    kind, _, path, _ = exported
    session = onnx_session(path, provider="cpu")
    feeds = feeds_for(np.random.default_rng(1), 1, MAX_LENGTH + 1)
    with pytest.raises(Exception, match="out of data bounds"):
        fx.session_outputs(session, onnx_feeds(kind, feeds))


def test_lengths_past_the_maximum_are_refused_before_any_work(monkeypatch, tmp_path):
    monkeypatch.setattr(conversion_lib, "convert", lambda *a, **k: pytest.fail("converted"))
    with pytest.raises(ValueError, match=r"max_sequence_length 96.*Received: lengths=\[5, 97\]"):
        export_onnx(backbone(3), tmp_path / "m.onnx", lengths=[97, 5])
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------
# Hugging Face input names (the classifier's file)
# ---------------------------------------------------------------------------


def word_level_tokenizer():
    """A real transformers fast tokenizer over a small in-memory vocabulary."""
    import tokenizers
    import transformers

    words = ["<s>", "<pad>", "</s>", "<unk>"] + [f"w{i}" for i in range(VOCABULARY - 4)]
    model = tokenizers.models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>")
    tokenizer = tokenizers.Tokenizer(model)
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", unk_token="<unk>"
    )


def test_huggingface_names_take_a_tokenizers_output_as_is(tmp_path_factory):
    _, model, path, report = export_kind("classifier", tmp_path_factory)
    assert report.verified
    assert {name: spec["dtype"] for name, spec in report.inputs.items()} == {
        "input_ids": "int64", "attention_mask": "int64", "global_attention_mask": "int64",
    }
    session = onnx_session(path, provider="cpu")
    assert read_metadata(session)["input_names"] == "huggingface"
    texts = ["<s> w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 </s>", "<s> w11 w12 </s>", "<s> w20 w21 w22 </s>"]
    encoded = word_level_tokenizer()(
        texts, padding=True, return_tensors="np", return_token_type_ids=False
    )
    global_attention_mask = np.zeros_like(encoded["input_ids"])
    global_attention_mask[:, 0] = 1
    feeds = {**encoded, "global_attention_mask": global_attention_mask}
    assert {k: v.dtype for k, v in feeds.items()} == dict.fromkeys(feeds, np.dtype("int64"))
    (logits,) = session.run(["logits"], feeds)  # no renaming, no casting
    expected = fx.keras_outputs(model, {
        "token_ids": encoded["input_ids"],
        "padding_mask": encoded["attention_mask"],
        "global_mask": global_attention_mask,
    })["logits"]
    assert fx.max_abs_error(expected, logits) <= fx.FLOAT32_TOLERANCE


# ---------------------------------------------------------------------------
# The graph itself (the backbone's)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def backbone_export(tmp_path_factory):
    _, model, path, _ = export_kind("backbone", tmp_path_factory)
    return model, path


def test_onnx_reference_evaluator_runs_it(backbone_export):
    """Standard ONNX: ONNX's own reference implementation runs the file
    and agrees with Keras."""
    from onnx.reference import ReferenceEvaluator

    model, path = backbone_export
    evaluator = ReferenceEvaluator(str(path))
    for batch, length in [(2, 11), (1, 4)]:
        feeds = feeds_for(np.random.default_rng(length), batch, length)
        expected = fx.keras_outputs(model, feeds)
        names = [value.name for value in onnx.load(path).graph.output]
        inputs = {
            "token_ids": feeds["token_ids"].astype("int32"),
            "padding_mask": feeds["padding_mask"].astype("int32"),
            "global_mask": feeds["global_mask"].astype("int32"),
        }
        actual = dict(zip(names, evaluator.run(names, inputs)))
        for name in expected:
            assert fx.max_abs_error(expected[name], actual[name]) <= fx.FLOAT32_TOLERANCE, name


def _intermediate_shapes(path, feeds, op_types):
    """Shapes of the outputs of every node of `op_types`, from one
    onnxruntime run with those outputs exposed."""
    model = onnx.load(path)
    wanted = [n.output[0] for n in model.graph.node if n.op_type in op_types]
    known = {value.name for value in model.graph.output}
    for name in wanted:
        if name not in known:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    outputs = session.run(wanted, feeds)
    by_type = collections.defaultdict(list)
    producers = {n.output[0]: n.op_type for n in model.graph.node}
    for name, value in zip(wanted, outputs):
        by_type[producers[name]].append(np.shape(value))
    return by_type


def test_no_where_of_the_scores_size(backbone_export):
    """Masks are additive biases on their own small shapes: every `Where`
    works on tensors no larger than a `[batch, sequence]` mask, while the
    attention scores (what `Softmax`, or a softmax's `Exp`, reads) are far
    larger."""
    _, path = backbone_export
    batch, length = 2, 50
    feeds = feeds_for(np.random.default_rng(0), batch, length)
    feeds = {name: value.astype("int32") for name, value in feeds.items()}
    shapes = _intermediate_shapes(path, feeds, {"Where", "Exp", "Softmax"})
    scores = shapes["Exp"] + shapes["Softmax"]
    assert len(scores) >= 2  # the band and the global rows
    smallest_scores = min(int(np.prod(shape)) for shape in scores)
    assert smallest_scores >= 10 * batch * length
    for shape in shapes["Where"]:
        assert int(np.prod(shape)) <= batch * length, (shape, smallest_scores)


def test_weights_live_once_as_matmul_and_gather(backbone_export):
    """No Gemm on a transposed copy, no weight copy kept for a Shape node:
    every projection is a MatMul on an initializer, every embedding a Gather."""
    model, path = backbone_export
    graph = onnx.load(path).graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    ops = collections.Counter(node.op_type for node in graph.node)
    assert ops["Gemm"] == 0
    assert not [n for n in graph.node if n.op_type == "Shape" and n.input[0] in initializers]
    weight_matmuls = [n for n in graph.node if n.op_type == "MatMul" and n.input[1] in initializers]
    # query, key, value, output, three global projections, two feed-forward, pooler
    assert len(weight_matmuls) == 10
    gathers = [n for n in graph.node if n.op_type == "Gather" and n.input[0] in initializers]
    tables = {tuple(initializers[n.input[0]].dims) for n in gathers}
    assert (VOCABULARY, 16) in tables and (MAX_LENGTH + PAD_ID + 1, 16) in tables
    keras_floats = sum(int(np.prod(w.shape)) for w in model.weights if "float" in str(w.dtype))
    onnx_floats = sum(
        int(np.prod(t.dims)) for t in graph.initializer if t.data_type == onnx.TensorProto.FLOAT
    )
    # Each weight once (plus a few small folded constants): no doubled copies.
    assert onnx_floats <= 1.05 * keras_floats, (onnx_floats, keras_floats)
