"""`write_triton_repository` and `keras-longformer triton`.

The graphs are built with `onnx.helper` (instant, and every Triton data type
the exporter produces: int32 and bool inputs, float32 and float16 outputs);
config.pbtxt is parsed with Triton's own model-config schema, and the
copied model is run in onnxruntime against the original.
"""

import os
import re

import numpy as np
import onnx
import onnxruntime
import pytest
from google.protobuf import text_format
from onnx import TensorProto
from onnx import helper
from onnx import numpy_helper
from tritonclient.grpc import model_config_pb2

from keras_longformer import cli
from keras_longformer.export import write_triton_repository

VOCABULARY, HIDDEN = 11, 4


def tiny_graph(batch="batch"):
    """token_ids int32 [batch, sequence], padding_mask bool [batch, sequence]
    -> sequence_output float32 and half_output float16 [batch, sequence, 4]."""
    table = np.random.default_rng(0).standard_normal((VOCABULARY, HIDDEN)).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["table", "token_ids"], ["embedded"]),
        helper.make_node("Cast", ["padding_mask"], ["mask_float"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask_float", "last_axis"], ["mask_3d"]),
        helper.make_node("Mul", ["embedded", "mask_3d"], ["sequence_output"]),
        helper.make_node("Cast", ["sequence_output"], ["half_output"], to=TensorProto.FLOAT16),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [
            helper.make_tensor_value_info("token_ids", TensorProto.INT32, [batch, "sequence"]),
            helper.make_tensor_value_info("padding_mask", TensorProto.BOOL, [batch, "sequence"]),
        ],
        [
            helper.make_tensor_value_info("sequence_output", TensorProto.FLOAT, [batch, "sequence", HIDDEN]),
            helper.make_tensor_value_info("half_output", TensorProto.FLOAT16, [batch, "sequence", HIDDEN]),
        ],
        initializer=[
            numpy_helper.from_array(table, "table"),  # raw data: can go to external data
            numpy_helper.from_array(np.array([-1], np.int64), "last_axis"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    helper.set_model_props(model, {"keras_longformer.max_sequence_length": "64"})
    onnx.checker.check_model(model)
    return model


def save(model, path, external=False):
    if external:
        onnx.save_model(
            model, str(path), save_as_external_data=True, location="weights.bin", size_threshold=64
        )
    else:
        onnx.save_model(model, str(path))
    return path


def parse_config(model_directory):
    config = model_config_pb2.ModelConfig()
    with open(os.path.join(model_directory, "config.pbtxt")) as handle:
        text_format.Parse(handle.read(), config)
    return config


def feeds(batch=2, length=5):
    rng = np.random.default_rng(1)
    return {
        "token_ids": rng.integers(0, VOCABULARY, (batch, length)).astype(np.int32),
        "padding_mask": np.arange(length)[None, :] < np.array([[length], [2]])[:batch],
    }


def run_cpu(path, inputs):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs)))


def test_config_follows_the_graph_and_parses_with_tritons_schema(tmp_path):
    onnx_path = save(tiny_graph(), tmp_path / "tiny.onnx")
    target = write_triton_repository(onnx_path, tmp_path / "repo")

    assert target == str(tmp_path / "repo" / "tiny")
    assert sorted(os.listdir(tmp_path / "repo")) == ["tiny"]
    assert sorted(os.listdir(target)) == ["1", "config.pbtxt"]
    assert os.listdir(os.path.join(target, "1")) == ["model.onnx"]
    config = parse_config(target)
    DataType = model_config_pb2.DataType
    assert config.name == "tiny" and config.backend == "onnxruntime"
    assert config.max_batch_size == 8
    # With max_batch_size > 0 the batch dim is implicit: only the rest are listed.
    assert [(t.name, t.data_type, list(t.dims)) for t in config.input] == [
        ("token_ids", DataType.Value("TYPE_INT32"), [-1]),
        ("padding_mask", DataType.Value("TYPE_BOOL"), [-1]),
    ]
    assert [(t.name, t.data_type, list(t.dims)) for t in config.output] == [
        ("sequence_output", DataType.Value("TYPE_FP32"), [-1, HIDDEN]),
        ("half_output", DataType.Value("TYPE_FP16"), [-1, HIDDEN]),
    ]
    assert config.HasField("dynamic_batching")
    assert len(config.instance_group) == 1
    group = config.instance_group[0]
    assert group.count == 1
    assert group.kind == model_config_pb2.ModelInstanceGroup.Kind.Value("KIND_GPU")


def test_batch_size_zero_lists_the_batch_dim_and_has_no_dynamic_batching(tmp_path):
    onnx_path = save(tiny_graph(), tmp_path / "tiny.onnx")
    target = write_triton_repository(
        onnx_path, tmp_path / "repo", model_name="longformer-cpu", max_batch_size=0,
        instance_kind="cpu",
    )
    config = parse_config(target)
    assert config.name == "longformer-cpu" and config.max_batch_size == 0
    assert [list(t.dims) for t in config.input] == [[-1, -1], [-1, -1]]
    assert [list(t.dims) for t in config.output] == [[-1, -1, HIDDEN]] * 2
    assert not config.HasField("dynamic_batching")
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.Kind.Value("KIND_CPU")


def test_copied_model_with_external_data_runs_like_the_original(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    onnx_path = save(tiny_graph(), source / "tiny.onnx", external=True)
    inputs = feeds()
    expected = run_cpu(onnx_path, inputs)
    target = write_triton_repository(onnx_path, tmp_path / "repo", model_name="served")

    assert sorted(os.listdir(os.path.join(target, "1"))) == ["model.onnx", "weights.bin"]
    # The copy must not lean on the original's files.
    for name in os.listdir(source):
        os.remove(source / name)
    actual = run_cpu(os.path.join(target, "1", "model.onnx"), inputs)
    assert expected.keys() == actual.keys()
    for name in expected:
        assert actual[name].dtype == expected[name].dtype
        error = np.max(np.abs(actual[name].astype(np.float64) - expected[name].astype(np.float64)))
        assert error == 0.0, (name, error)


def test_existing_model_is_kept_unless_overwrite(tmp_path):
    onnx_path = save(tiny_graph(), tmp_path / "tiny.onnx")
    repository = tmp_path / "repo"
    target = write_triton_repository(onnx_path, repository)
    before = (repository / "tiny" / "config.pbtxt").read_text()

    with pytest.raises(FileExistsError, match="already exists"):
        write_triton_repository(onnx_path, repository, instance_kind="cpu")
    assert (repository / "tiny" / "config.pbtxt").read_text() == before

    write_triton_repository(onnx_path, repository, instance_kind="cpu", overwrite=True)
    config = parse_config(target)
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.Kind.Value("KIND_CPU")
    assert os.listdir(os.path.join(target, "1")) == ["model.onnx"]
    assert sorted(os.listdir(repository)) == ["tiny"]  # no staging or old copy left


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        ({"instance_kind": "tpu"}, ValueError, "Received: instance_kind='tpu'"),
        ({"max_batch_size": -1}, ValueError, "Received: max_batch_size=-1"),
        ({"max_batch_size": 2.0}, ValueError, "Received: max_batch_size=2.0"),
        ({"model_name": "../escape"}, ValueError, "Received: model_name='../escape'"),
        ({"model_name": ""}, ValueError, "Received: model_name=''"),
        ({"onnx_path": "missing.onnx"}, FileNotFoundError, "onnx_path"),
        ({"onnx_path": "not_onnx.onnx"}, ValueError, "onnx_path"),
    ],
)
def test_bad_arguments_are_named_before_any_write(tmp_path, arguments, error, message):
    onnx_path = save(tiny_graph(), tmp_path / "tiny.onnx")
    (tmp_path / "not_onnx.onnx").write_bytes(b"\x01 not a protobuf \xff")
    if "onnx_path" in arguments:
        onnx_path = tmp_path / arguments.pop("onnx_path")
    with pytest.raises(error, match=re.escape(message)):
        write_triton_repository(onnx_path, tmp_path / "repo", **arguments)
    assert not (tmp_path / "repo").exists()


def test_file_name_that_is_no_model_name_asks_for_one(tmp_path):
    onnx_path = save(tiny_graph(), tmp_path / "my model.onnx")
    with pytest.raises(ValueError, match="pass model_name"):
        write_triton_repository(onnx_path, tmp_path / "repo")
    assert not (tmp_path / "repo").exists()


def test_static_batch_needs_max_batch_size_zero(tmp_path):
    onnx_path = save(tiny_graph(batch=1), tmp_path / "fixed.onnx")
    with pytest.raises(ValueError, match="Pass max_batch_size=0"):
        write_triton_repository(onnx_path, tmp_path / "repo")
    assert not (tmp_path / "repo").exists()
    config = parse_config(write_triton_repository(onnx_path, tmp_path / "repo", max_batch_size=0))
    assert list(config.input[0].dims) == [1, -1]


def test_missing_external_data_is_refused_before_any_write(tmp_path):
    onnx_path = save(tiny_graph(), tmp_path / "tiny.onnx", external=True)
    os.remove(tmp_path / "weights.bin")
    with pytest.raises(FileNotFoundError, match="weights.bin"):
        write_triton_repository(onnx_path, tmp_path / "repo")
    assert not (tmp_path / "repo").exists()


def test_external_data_outside_the_files_directory_is_refused(tmp_path):
    from onnx.external_data_helper import set_external_data

    model = tiny_graph()
    table = model.graph.initializer[0]
    (tmp_path / "outside.bin").write_bytes(table.raw_data)
    set_external_data(table, location="../outside.bin")
    table.data_location = TensorProto.EXTERNAL
    table.ClearField("raw_data")
    (tmp_path / "inner").mkdir()
    onnx_path = save(model, tmp_path / "inner" / "tiny.onnx")
    with pytest.raises(ValueError, match="outside its directory"):
        write_triton_repository(onnx_path, tmp_path / "repo")
    assert not (tmp_path / "repo").exists()


def test_command_writes_the_repository_and_errors_in_one_line(tmp_path, capsys):
    onnx_path = save(tiny_graph(), tmp_path / "tiny.onnx")
    repository = tmp_path / "repo"
    status = cli.main(
        ["--verbose", "triton", str(onnx_path), str(repository), "--name", "served",
         "--max-batch-size", "4", "--instance-kind", "cpu"]
    )
    out, err = capsys.readouterr()
    assert status == 0, out + err
    config = parse_config(repository / "served")
    assert config.max_batch_size == 4
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.Kind.Value("KIND_CPU")
    assert str(repository / "served") in out

    status = cli.main(["--verbose", "triton", str(onnx_path), str(repository), "--name", "served"])
    out, err = capsys.readouterr()
    assert status == 1
    errors = err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("keras-longformer: error:")
    assert "already exists" in errors[0] and "--force" in errors[0]
