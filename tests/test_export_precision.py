"""float16 and int8 exports against the float32 Keras model; the
`--precision` and `--hf-names` options of the command line.

Each comparison here runs the file in onnxruntime and Keras itself; the
export's own report is not trusted for it.
"""

import collections
import copy

import keras
import numpy as np
import onnx
import pytest

import export_fixtures as fx
import keras_longformer.models as models
from keras_longformer.export import ExportError
from keras_longformer.export import export_onnx
from keras_longformer.export import onnx_session
from keras_longformer.export import read_metadata
from keras_longformer.export import conversion as conversion_lib

VOCABULARY = 60
PAD_ID = 1
SHAPES = [(1, 5), (3, 23), (2, 70)]
FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)


def backbone(seed):
    keras.utils.set_random_seed(seed)
    return models.LongformerBackbone(
        vocabulary_size=VOCABULARY,
        num_layers=1,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        window=3,
        dilation=[[1, 2]],  # one plain and one dilated head
        max_sequence_length=96,
    )


def relative_error(expected, actual):
    return fx.max_abs_error(expected, actual) / float(np.max(np.abs(expected)))


def feeds_for(rng, batch, length):
    return fx.random_inputs(rng, length, batch=batch, vocabulary=VOCABULARY, pad_id=PAD_ID)


def recorded_export(monkeypatch, *args, **kwargs):
    """`export_onnx`, keeping a copy of the graph tf2onnx returned."""
    graphs = []
    original = conversion_lib.convert

    def recording(*a, **k):
        graph = original(*a, **k)
        graphs.append(copy.deepcopy(graph))
        return graph

    monkeypatch.setattr(conversion_lib, "convert", recording)
    report = export_onnx(*args, **kwargs)
    monkeypatch.undo()
    return report, graphs[0]


# ---------------------------------------------------------------------------
# float16
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def float16(tmp_path_factory):
    model = backbone(20)
    directory = tmp_path_factory.mktemp("float16")
    report, graph = recorded_export(
        pytest.MonkeyPatch(), model, directory / "half.onnx", precision="float16", lengths=[1, 41]
    )
    return model, report, graph


def test_float16_matches_float32_keras_within_its_tolerance(float16):
    model, report, _ = float16
    assert report.verified and report.precision == "float16"
    session = onnx_session(report.path, provider="cpu")
    rng = np.random.default_rng(0)
    for batch, length in SHAPES:
        feeds = feeds_for(rng, batch, length)
        expected = fx.keras_outputs(model, feeds)
        actual = fx.session_outputs(session, feeds)
        for name in expected:
            assert actual[name].dtype == np.float32  # outputs keep their type
            assert relative_error(expected[name], actual[name]) <= 1e-2, (name, batch, length)


def test_float16_types_weights_and_float32_softmax(float16):
    model, report, _ = float16
    proto = onnx.load(report.path)
    assert {v.name: v.type.tensor_type.elem_type for v in proto.graph.input} == dict.fromkeys(
        ["token_ids", "padding_mask", "global_mask"], onnx.TensorProto.INT32
    )
    assert {v.type.tensor_type.elem_type for v in proto.graph.output} == {onnx.TensorProto.FLOAT}
    initializers = {t.name: t for t in proto.graph.initializer}
    weights = [
        initializers[n.input[1]] for n in proto.graph.node
        if n.op_type == "MatMul" and n.input[1] in initializers
    ]
    assert len(weights) == 9 + 1  # 7 attention and 2 feed-forward projections, pooler
    assert {w.data_type for w in weights} == {onnx.TensorProto.FLOAT16}
    big_floats = [t for t in proto.graph.initializer if t.data_type in FLOAT_TYPES and len(t.raw_data) >= 512]
    assert {t.data_type for t in big_floats} == {onnx.TensorProto.FLOAT16}
    float_bytes = sum(len(t.raw_data) for t in proto.graph.initializer if t.data_type in FLOAT_TYPES)
    keras_bytes = sum(w.numpy().nbytes for w in model.weights if "float" in str(w.dtype))
    assert float_bytes <= 0.52 * keras_bytes, (float_bytes, keras_bytes)
    read = read_metadata(proto)
    assert read["precision"] == "float16"
    # Softmax (a Softmax, or a softmax's Exp) and normalisation (the
    # variance's Sqrt) run in float32.
    run = _intermediate_outputs(
        report.path, {"Softmax", "Exp", "Sqrt"}, feeds_for(np.random.default_rng(1), 2, 30)
    )
    softmax = run["Softmax"] + run["Exp"]
    assert len(softmax) >= 2 and {a.dtype for a in softmax} == {np.dtype("float32")}
    assert run["Sqrt"] and {a.dtype for a in run["Sqrt"]} == {np.dtype("float32")}


def _intermediate_outputs(path, op_types, feeds):
    import onnxruntime

    model = onnx.load(path)
    wanted = [n.output[0] for n in model.graph.node if n.op_type in op_types]
    for name in wanted:
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    feeds = {k: np.asarray(v).astype("int32") for k, v in feeds.items()}
    producers = {n.output[0]: n.op_type for n in model.graph.node}
    result = collections.defaultdict(list)
    for name, value in zip(wanted, session.run(wanted, feeds)):
        result[producers[name]].append(value)
    return result


def test_float16_all_padding_rows_stay_finite(float16):
    model, report, _ = float16
    session = onnx_session(report.path, provider="cpu")
    feeds = feeds_for(np.random.default_rng(2), 2, 12)
    feeds["padding_mask"][1] = False
    feeds["token_ids"][1] = PAD_ID
    feeds["global_mask"][1] = True  # global flags on padding are ignored
    actual = fx.session_outputs(session, feeds)
    expected = fx.keras_outputs(model, feeds)
    for name in expected:
        assert np.isfinite(actual[name]).all(), name
        assert relative_error(expected[name], actual[name]) <= 1e-2, name


def test_float16_past_its_tolerance_fails_with_the_table(float16, monkeypatch, tmp_path):
    from keras_longformer.export import verify as verify_lib

    model, _, graph = float16
    monkeypatch.setattr(conversion_lib, "convert", lambda *a, **k: copy.deepcopy(graph))
    strict = verify_lib.Criterion("float16", relative=1e-7)
    monkeypatch.setitem(verify_lib.CRITERIA, "float16", strict)
    with pytest.raises(ExportError, match="differs from Keras") as info:
        export_onnx(model, tmp_path / "half.onnx", precision="float16", lengths=[5])
    assert "FAIL (relative > 1e-07" in info.value.report.table()
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------
# int8
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def int8(tmp_path_factory):
    """A masked LM (token and position embeddings, projections, a tied
    decoder) in float32, and in int8 from the same converted graph."""
    keras.utils.set_random_seed(21)
    model = models.LongformerMaskedLM(backbone(21))
    directory = tmp_path_factory.mktemp("int8")
    monkeypatch = pytest.MonkeyPatch()
    full, graph = recorded_export(monkeypatch, model, directory / "full.onnx", lengths=[4])
    monkeypatch.setattr(conversion_lib, "convert", lambda *a, **k: copy.deepcopy(graph))
    try:
        report = export_onnx(model, directory / "int8.onnx", precision="int8", lengths=[1, 41])
    finally:
        monkeypatch.undo()
    return model, full, report


def test_int8_agrees_with_float32_keras(int8):
    model, _, report = int8
    assert report.verified and report.precision == "int8"
    session = onnx_session(report.path, provider="cpu")
    rng = np.random.default_rng(3)
    for batch, length in SHAPES:
        feeds = feeds_for(rng, batch, length)
        expected = fx.keras_outputs(model, feeds)["logits"]
        actual = fx.session_outputs(session, feeds)["logits"]
        assert relative_error(expected, actual) <= 1e-1, (batch, length)
        agreement = np.mean(np.argmax(expected, -1) == np.argmax(actual, -1))
        assert agreement >= 0.9, (batch, length, agreement)


def test_int8_quantizes_every_projection_and_embedding(int8):
    _, full, report = int8
    assert report.weight_bytes <= full.weight_bytes / 2, (report.weight_bytes, full.weight_bytes)
    proto = onnx.load(report.path)
    initializers = {t.name: t for t in proto.graph.initializer}
    float_weights = [
        n.name for n in proto.graph.node
        if (n.op_type == "MatMul" and n.input[1] in initializers)
        or (n.op_type == "Gather" and n.input[0] in initializers
            and initializers[n.input[0]].data_type in FLOAT_TYPES)
    ]
    assert float_weights == []
    # What is left in float: biases, LayerNorm scales, small folded constants.
    big_floats = [
        (t.name, tuple(t.dims)) for t in proto.graph.initializer
        if t.data_type in FLOAT_TYPES and len(t.dims) >= 2 and min(t.dims) > 1
    ]
    assert big_floats == []
    int8_tables = [t for t in proto.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    # 9 projections, the MLM head's dense, the decoder, two embedding tables
    assert len(int8_tables) >= 9 + 4


# ---------------------------------------------------------------------------
# Arguments (Hugging Face input names: test_export_models.py's classifier)
# ---------------------------------------------------------------------------


def test_unknown_precision_and_naming_are_refused_before_any_work(monkeypatch, tmp_path):
    monkeypatch.setattr(conversion_lib, "convert", lambda *a, **k: pytest.fail("converted"))
    model = backbone(23)
    with pytest.raises(ValueError, match=r"'float32', 'float16', 'int8'.*precision='bfloat16'"):
        export_onnx(model, tmp_path / "m.onnx", precision="bfloat16")
    with pytest.raises(ValueError, match=r"'keras', 'huggingface'.*input_names='hf'"):
        export_onnx(model, tmp_path / "m.onnx", input_names="hf")
    assert list(tmp_path.iterdir()) == []


def test_command_line_passes_precision_and_names(monkeypatch, tmp_path, capsys):
    import keras_longformer.export as export_package
    from keras_longformer import cli
    from keras_longformer.export import ExportReport

    calls = []

    def recording_export(model, output, **kwargs):
        calls.append(kwargs)
        return ExportReport(path=str(output), opset=17, inputs={}, outputs={},
                            precision=kwargs["precision"])

    monkeypatch.setattr(export_package, "export_onnx", recording_export)
    model = tmp_path / "m.keras"
    model.write_bytes(b"not opened: export_onnx is a stand-in here")
    status = cli.main(["export", str(model), str(tmp_path / "m.onnx"), "--precision", "int8",
                       "--hf-names", "--no-verify"])
    assert status == 0, capsys.readouterr().err
    assert calls[-1]["precision"] == "int8" and calls[-1]["input_names"] == "huggingface"
    assert cli.main(["export", str(model), str(tmp_path / "m.onnx")]) == 0
    assert calls[-1]["precision"] == "float32" and calls[-1]["input_names"] == "keras"
    with pytest.raises(SystemExit) as info:
        cli.main(["export", str(model), str(tmp_path / "m.onnx"), "--precision", "int4"])
    assert info.value.code == 2 and "invalid choice: 'int4'" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# int8 verification: near-ties are reported, not counted
# ---------------------------------------------------------------------------


def int8_row(expected, actual):
    from keras_longformer.export.verify import CRITERIA
    from keras_longformer.export.verify import _compare

    return _compare({"logits": np.asarray(expected, "float32")},
                    {"logits": np.asarray(actual, "float32")}, CRITERIA["int8"], 7, "none", 0.0)


def test_near_tied_logits_flipped_by_rounding_still_verify():
    # A fresh classifier: two classes within 1e-3 of each other on every row,
    # which int8 rounding (error 2e-3 of a scale-1 output) flips.
    expected = [[1.0, 0.9995], [0.9992, 1.0], [0.2, 0.2008]]
    actual = [[0.9985, 1.0005], [1.0005, 0.9985], [0.2015, 0.1995]]
    row = int8_row(expected, actual)
    assert row.ok and row.near_ties == 3 and row.argmax_agreement == 1.0


def test_a_decided_argmax_that_flips_is_refused_within_the_error_bound():
    # Within 10% of the scale, but Keras's margin (0.07) exceeds the error
    # (0.05): that flip is the export's, not rounding's.
    row = int8_row([[1.0, 0.93]], [[0.95, 0.98]])
    assert row.relative_error <= 0.1 and row.argmax_agreement == 0.0 and not row.ok


def test_a_wrong_int8_graph_is_refused():
    row = int8_row([[1.0, 0.2, -0.5]], [[-0.5, 0.2, 1.0]])
    assert not row.ok


def test_a_freshly_initialised_classifier_exports_in_int8(tmp_path):
    keras.utils.set_random_seed(3)
    model = models.LongformerTextClassifier(backbone(3), num_classes=4)
    report = export_onnx(model, tmp_path / "fresh_int8.onnx", precision="int8", lengths=[1, 17, 40])
    assert report.verified
    # Judged here too, not only by the export's own sweep: onnxruntime against Keras.
    rng = np.random.default_rng(4)
    ids = rng.integers(3, VOCABULARY, (3, 33)).astype("int32")
    glob = np.zeros_like(ids)
    glob[:, 0] = 1
    feeds = {"token_ids": ids, "padding_mask": np.ones_like(ids), "global_mask": glob}
    expected = keras.ops.convert_to_numpy(model(feeds))
    session = onnx_session(report.path, provider="cpu")
    (actual,) = session.run(None, {i.name: feeds[i.name] for i in session.get_inputs()})
    assert np.max(np.abs(actual - expected)) <= 0.1 * np.max(np.abs(expected))
