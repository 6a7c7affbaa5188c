"""`keras_longformer.export`: export_onnx, the parity sweep, atomic writes.

tf2onnx takes seconds per conversion, so the small model is converted once
per test process (`export_fixtures.converted`) and tests reuse its graph.
Other files: test_export_files.py (external data, bad files),
test_export_session.py (onnx_session), test_export_models.py (every model
kind, the graph itself), test_export_precision.py (float16, int8, Hugging
Face input names).
"""

import os
import pathlib

import keras
import numpy as np
import onnx
import pytest

import export_fixtures as fx
from keras_longformer.export import ExportError
from keras_longformer.export import ExportReport
from keras_longformer.export import UnknownLayerError
from keras_longformer.export import export_onnx
from keras_longformer.export import onnx_session
from keras_longformer.export import read_metadata
from keras_longformer.export import conversion as conversion_lib
from keras_longformer.export import onnx as onnx_lib
from keras_longformer.export import verify as verify_lib

WINDOWS = fx.WINDOWS
HIDDEN = fx.HIDDEN
VOCABULARY = fx.VOCABULARY
build_model = fx.build_small_model
random_inputs = fx.random_inputs


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The small model, exported once with the default sweep."""
    monkeypatch = pytest.MonkeyPatch()
    try:
        model = fx.reuse_graph(monkeypatch)
        path = tmp_path_factory.mktemp("export") / "small.onnx"
        report = export_onnx(model, path)
    finally:
        monkeypatch.undo()
    return model, path, report


@pytest.fixture
def reuse_graph(monkeypatch):
    """Makes `export_onnx` of the small model skip tf2onnx (reuses the graph)."""
    return fx.reuse_graph(monkeypatch)


def test_default_sweep_passes_at_every_length_and_pattern(exported):
    _, path, report = exported
    assert isinstance(report, ExportReport)
    assert report.verified and report.path == str(path) and report.opset == 17
    lengths = sorted({row.length for row in report.rows})
    expected = {1, 2}
    for window in WINDOWS:
        expected |= {window - 1, window, window + 1}
    expected |= {WINDOWS[1] * 2 - 1, WINDOWS[1] * 2, WINDOWS[1] * 2 + 1}  # dilated head
    assert expected <= set(lengths)
    assert max(lengths) >= 100  # a long one
    assert len([n for n in lengths if n > verify_lib.TRACE_LENGTH]) >= 2
    assert {row.pattern for row in report.rows} == set(verify_lib.PATTERNS)
    assert len(report.rows) == len(lengths) * len(verify_lib.PATTERNS)
    for row in report.rows:
        assert row.ok, report.table()
        assert row.max_abs_error <= 1e-4
        assert row.ort_seconds > 0
    assert report.max_abs_error <= 1e-4
    assert "max abs error" in report.table()


def test_names_and_symbolic_dims(exported):
    _, path, report = exported
    graph = onnx.load(path).graph

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    inputs = {value.name: dims(value) for value in graph.input}
    outputs = {value.name: dims(value) for value in graph.output}
    assert inputs == {
        "token_ids": ["batch", "sequence"],
        "padding_mask": ["batch", "sequence"],
        "global_mask": ["batch", "sequence"],
    }
    assert outputs == {
        "sequence_output": ["batch", "sequence", HIDDEN],
        "other_output": ["batch", "sequence", HIDDEN],
        "pooled_output": ["batch", 4],
    }
    assert report.inputs["token_ids"] == {"dims": ["batch", "sequence"], "dtype": "int32"}
    assert report.outputs["pooled_output"]["dims"] == ["batch", 4]


@pytest.mark.parametrize("length", [13, 200, 777])
def test_outputs_map_by_name_at_lengths_never_traced(exported, length):
    model, path, _ = exported
    session = onnx_session(path, provider="cpu")
    feeds = random_inputs(np.random.default_rng(length), length)
    expected = {name: np.asarray(value) for name, value in model(feeds).items()}
    names = [output.name for output in session.get_outputs()]
    actual = dict(zip(names, session.run(names, feeds)))
    assert set(actual) == set(expected)
    for name in expected:
        assert actual[name].shape == expected[name].shape
        assert np.max(np.abs(actual[name] - expected[name])) <= 1e-5, name
    # The two same-shape outputs really differ: a swap would be caught.
    assert np.max(np.abs(expected["sequence_output"] - expected["other_output"])) > 1e-2


def test_metadata_records_what_check_needs(exported):
    _, path, _ = exported
    metadata = read_metadata(onnx.load(path))
    assert metadata["vocabulary_size"] == VOCABULARY
    assert [tuple(w) for w in metadata["windows"]] == [(3, 1), (5, 1), (5, 2)]


def test_custom_lengths(reuse_graph, tmp_path):
    report = export_onnx(reuse_graph, tmp_path / "m.onnx", lengths=[17, 3, 3])
    assert sorted({row.length for row in report.rows}) == [3, 17]
    assert all(row.ok for row in report.rows)


def test_no_verify_writes_without_rows(reuse_graph, tmp_path):
    report = export_onnx(reuse_graph, tmp_path / "m.onnx", verify=False)
    assert report.rows == [] and not report.verified
    assert os.path.isfile(tmp_path / "m.onnx")
    assert "not run" in report.table()


# ---------------------------------------------------------------------------
# Atomic writes and failures
# ---------------------------------------------------------------------------


def _leftovers(directory, keep=()):
    return sorted(name for name in os.listdir(directory) if name not in keep)


def test_failed_verification_leaves_nothing_and_keeps_existing_file(
    reuse_graph, tmp_path, monkeypatch
):
    fx.keras_outputs_off_by_a_little(monkeypatch)
    target = tmp_path / "m.onnx"
    with pytest.raises(ExportError, match="differs from Keras") as info:
        export_onnx(reuse_graph, target, lengths=[4, 9])
    assert not target.exists()
    assert _leftovers(tmp_path) == []
    report = info.value.report
    assert len(report.failures) == len(report.rows) == 8
    assert all(row.worst_output == "other_output" for row in report.failures)
    assert "FAIL" in str(info.value) and "other_output" in report.table()

    target.write_bytes(b"previous, good export")
    with pytest.raises(ExportError):
        export_onnx(reuse_graph, target, lengths=[4], overwrite=True)
    assert target.read_bytes() == b"previous, good export"
    assert _leftovers(tmp_path) == ["m.onnx"]


def test_interrupted_export_leaves_nothing(reuse_graph, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(verify_lib, "sweep", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_onnx(reuse_graph, tmp_path / "m.onnx")
    assert _leftovers(tmp_path) == []


def test_existing_output_is_kept_unless_overwrite(reuse_graph, tmp_path):
    target = tmp_path / "m.onnx"
    target.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="overwrite"):
        export_onnx(reuse_graph, target)
    assert target.read_bytes() == b"keep me"
    report = export_onnx(reuse_graph, target, overwrite=True, lengths=[5])
    assert report.verified
    onnx.checker.check_model(str(target))
    assert _leftovers(tmp_path) == ["m.onnx"]


def test_argument_errors_come_before_any_conversion(tmp_path, monkeypatch):
    def no_conversion(*args, **kwargs):
        raise AssertionError("converted despite a bad argument")

    monkeypatch.setattr(conversion_lib, "convert", no_conversion)
    model = build_model()
    with pytest.raises(FileNotFoundError, match="directory does not exist"):
        export_onnx(model, tmp_path / "missing" / "m.onnx")
    with pytest.raises(ValueError, match="18"):
        export_onnx(model, tmp_path / "m.onnx", opset=19)
    with pytest.raises(ValueError, match="opset"):
        export_onnx(model, tmp_path / "m.onnx", opset=11)
    with pytest.raises(ValueError, match="lengths"):
        export_onnx(model, tmp_path / "m.onnx", lengths=[0, 5])
    with pytest.raises(ValueError, match="lengths"):
        export_onnx(model, tmp_path / "m.onnx", lengths=[])
    with pytest.raises(TypeError, match="keras.Model"):
        export_onnx(object(), tmp_path / "m.onnx")
    with pytest.raises(FileNotFoundError, match="No such file"):
        export_onnx(tmp_path / "absent.keras", tmp_path / "m.onnx")
    not_keras = tmp_path / "notes.keras"
    not_keras.write_text("not a model")
    with pytest.raises(ValueError, match="not a Keras model"):
        export_onnx(not_keras, tmp_path / "m.onnx")
    assert _leftovers(tmp_path) == ["notes.keras"]


class UnregisteredLayer(keras.layers.Layer):
    def call(self, x):
        return x * 2.0


def test_unknown_layer_is_named(tmp_path, monkeypatch):
    inputs = keras.Input((None, 4), name="hidden_states")
    model = keras.Model(inputs, UnregisteredLayer(name="mystery")(inputs))
    path = tmp_path / "custom.keras"
    model.save(path)
    monkeypatch.setattr(conversion_lib, "convert", lambda *a, **k: pytest.fail("converted"))
    with pytest.raises(UnknownLayerError, match="UnregisteredLayer") as info:
        export_onnx(path, tmp_path / "m.onnx")
    assert info.value.class_names == ["UnregisteredLayer"]


def test_keras_file_loads_with_package_layers(reuse_graph, tmp_path):
    path = tmp_path / "model.keras"
    reuse_graph.save(path)
    report = export_onnx(path, tmp_path / "m.onnx", lengths=[6])
    assert report.verified and report.max_abs_error <= 1e-4


def test_unconverted_op_is_a_clear_error(tmp_path):
    # TensorFlow lowers exact GELU through Erfc, which tf2onnx leaves unconverted.
    inputs = keras.Input((None, 4), name="hidden_states")
    model = keras.Model(inputs, keras.layers.Dense(4, activation="gelu")(inputs))
    with pytest.raises(ExportError, match="Erfc"):
        export_onnx(model, tmp_path / "gelu.onnx")
    assert _leftovers(tmp_path) == []


def test_tf2onnx_large_model_path(tmp_path, monkeypatch):
    """A real conversion down tf2onnx's path for models over 2 GB (weights
    kept out of TensorFlow's graph), on a small model by lowering the
    threshold; numpy 2's missing `np.product` is lent for that conversion only."""
    monkeypatch.setattr(onnx_lib, "EXTERNAL_DATA_THRESHOLD", 0)
    model = build_model()
    target = tmp_path / "large.onnx"
    report = export_onnx(model, target, lengths=[1, 7, 20])
    assert not hasattr(np, "product")
    assert report.verified
    assert report.external_data == str(target) + ".data"
    assert _leftovers(tmp_path) == ["large.onnx", "large.onnx.data"]
    proto = onnx.load(target, load_external_data=False)
    external = [t for t in proto.graph.initializer if onnx.external_data_helper.uses_external_data(t)]
    assert external, "no tensor stored as external data"
    inline = [
        t.name for t in proto.graph.initializer
        if not onnx.external_data_helper.uses_external_data(t) and len(t.raw_data) >= 1024
    ]
    assert inline == []  # every tensor of 1 KB or more lives in the .data file
    session = onnx_session(target, provider="cpu")
    feeds = random_inputs(np.random.default_rng(0), 11)
    actual = session.run(["sequence_output"], feeds)[0]
    expected = np.asarray(model(feeds)["sequence_output"])
    assert np.max(np.abs(actual - expected)) <= 1e-5


# ---------------------------------------------------------------------------
# Hugging Face parity, opsets, the exporter's own imports
# ---------------------------------------------------------------------------


def test_huggingface_checkpoint_matches_pytorch_at_unseen_lengths(tmp_path):
    import torch
    import transformers

    from keras_longformer.convert import from_huggingface

    torch.manual_seed(0)
    config = transformers.LongformerConfig(
        vocab_size=80,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        # One-sided 2 and 4 here. (Hugging Face pads to a multiple of the largest
        # window only, so its windows must divide each other.)
        attention_window=[4, 8],
        max_position_embeddings=130,
        pad_token_id=1,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    hf_model = transformers.LongformerModel(config).eval()
    hf_model.save_pretrained(tmp_path / "hf")
    backbone = from_huggingface(str(tmp_path / "hf"))
    # Verified at short lengths only; compared with PyTorch at others.
    report = export_onnx(backbone, tmp_path / "hf.onnx", lengths=[1, 3, 5])
    assert report.verified, report.table()
    session = onnx_session(tmp_path / "hf.onnx", provider="cpu")
    rng = np.random.default_rng(0)
    for length, globals_ in ((9, [0]), (37, [0, 5, 20]), (100, [])):
        ids = rng.integers(3, 80, (2, length))
        mask = np.ones((2, length), "int64")
        mask[1, length - length // 3:] = 0
        ids[1, length - length // 3:] = 1
        global_mask = np.zeros((2, length), "int64")
        global_mask[:, globals_] = 1
        with torch.no_grad():
            hf = hf_model(
                input_ids=torch.from_numpy(ids),
                attention_mask=torch.from_numpy(mask),
                global_attention_mask=torch.from_numpy(global_mask),
            ).last_hidden_state.numpy()
        feeds = {"token_ids": ids, "padding_mask": mask, "global_mask": global_mask}
        ours = fx.session_outputs(session, feeds)["sequence_output"]
        real = mask.astype(bool)
        assert np.max(np.abs(ours[real] - hf[real])) <= 1e-4, length


def one_attention_layer():
    """The attention alone (dilated, with global tokens): what needs opset 13."""
    import keras_longformer

    keras.utils.set_random_seed(4)
    inputs = {
        "token_ids": keras.Input((None,), dtype="int32", name="token_ids"),
        "padding_mask": keras.Input((None,), dtype="bool", name="padding_mask"),
        "global_mask": keras.Input((None,), dtype="bool", name="global_mask"),
    }
    x = keras.layers.Embedding(VOCABULARY, 8)(inputs["token_ids"])
    x = keras_longformer.LongformerSelfAttention(2, 4, window=3, dilation=[1, 2])(
        x, padding_mask=inputs["padding_mask"], global_mask=inputs["global_mask"]
    )
    return keras.Model(inputs, {"sequence_output": x})


@pytest.mark.parametrize("opset", [onnx_lib.MIN_OPSET, 18])
def test_lowest_and_highest_opset(tmp_path, opset):
    report = export_onnx(one_attention_layer(), tmp_path / "m.onnx", opset=opset, lengths=[1, 6, 11])
    assert report.verified and report.opset == opset
    assert {o.domain or "": o.version for o in onnx.load(tmp_path / "m.onnx").opset_import}[""] == opset


def test_the_exporter_imports_no_private_keras_module():
    """`keras.src` moves between Keras releases; the exporter uses public API only."""
    import keras_longformer.export as package

    sources = sorted(pathlib.Path(package.__file__).parent.glob("*.py"))
    assert len(sources) > 5
    for source in sources:
        text = source.read_text()
        assert "keras.src" not in text and "keras._tf_keras" not in text, source.name
