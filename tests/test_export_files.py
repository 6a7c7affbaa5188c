"""Files of an export: external data published with its `.onnx`, atomic
replacement and roll-back, file systems without hard links, and bad files
refused in one line before any work, leaving nothing behind."""

import errno
import os
import zipfile

import numpy as np
import onnx
import pytest

import export_fixtures as fx
from keras_longformer.export import ExportError
from keras_longformer.export import export_onnx
from keras_longformer.export import load_keras_model
from keras_longformer.export import onnx_session
from keras_longformer.export import conversion as conversion_lib
from keras_longformer.export import files as files_lib
from keras_longformer.export import onnx as onnx_lib
from keras_longformer.export import verify as verify_lib


def listing(directory):
    return sorted(os.listdir(directory))


def contents(directory):
    return {name: (directory / name).read_bytes() for name in listing(directory)}


@pytest.fixture
def large(monkeypatch):
    """Every export is written with external data (as a model over ~1.8 GB is)."""
    monkeypatch.setattr(onnx_lib, "EXTERNAL_DATA_THRESHOLD", 0)


def fail_converting(*args, **kwargs):
    raise AssertionError("converted despite an error that needs no conversion")


def assert_matches_keras(model, path):
    session = onnx_session(path, provider="cpu")
    feeds = fx.random_inputs(np.random.default_rng(0), 11)
    expected = fx.keras_outputs(model, feeds)
    actual = fx.session_outputs(session, feeds)
    for name in expected:
        assert fx.max_abs_error(expected[name], actual[name]) <= fx.FLOAT32_TOLERANCE, name


# ---------------------------------------------------------------------------
# External data
# ---------------------------------------------------------------------------


def test_external_data_is_written_beside_its_onnx(monkeypatch, tmp_path, large):
    model = fx.reuse_graph(monkeypatch)
    target = tmp_path / "m.onnx"
    report = export_onnx(model, target, lengths=[4])
    assert report.verified and report.external_data == str(target) + ".data"
    assert listing(tmp_path) == ["m.onnx", "m.onnx.data"]
    proto = onnx.load(target, load_external_data=False)
    stored = onnx.external_data_helper.uses_external_data
    assert any(stored(t) for t in proto.graph.initializer)
    inline = [t.name for t in proto.graph.initializer if not stored(t) and len(t.raw_data) >= 1024]
    assert inline == []  # every tensor of 1 KiB or more lives in the .data file
    assert_matches_keras(model, target)


def test_int8_with_external_data(monkeypatch, tmp_path, large):
    # The small model's int8 tables are under 1 KiB: send out those over 200 bytes.
    monkeypatch.setattr(files_lib, "EXTERNAL_TENSOR_BYTES", 200)
    model = fx.reuse_graph(monkeypatch)
    target = tmp_path / "m.onnx"
    report = export_onnx(model, target, precision="int8", lengths=[6])
    assert report.verified and listing(tmp_path) == ["m.onnx", "m.onnx.data"]
    session = onnx_session(target, provider="cpu")
    feeds = fx.random_inputs(np.random.default_rng(0), 11)
    expected = fx.keras_outputs(model, feeds)["sequence_output"]
    actual = fx.session_outputs(session, feeds)["sequence_output"]
    assert fx.max_abs_error(expected, actual) <= 0.1 * np.max(np.abs(expected))


def test_existing_data_is_refused_before_any_work(monkeypatch, tmp_path, large):
    model = fx.reuse_graph(monkeypatch)
    (tmp_path / "m.onnx.data").write_bytes(b"someone else's weights")
    monkeypatch.setattr(conversion_lib, "convert", fail_converting)
    with pytest.raises(FileExistsError, match=r"m\.onnx\.data.*already exists") as info:
        export_onnx(model, tmp_path / "m.onnx", lengths=[4])
    assert "\n" not in str(info.value)
    assert contents(tmp_path) == {"m.onnx.data": b"someone else's weights"}


def test_replacing_a_pair_rolls_back_when_the_onnx_cannot_be_placed(
    monkeypatch, tmp_path, large
):
    model = fx.reuse_graph(monkeypatch)
    target = tmp_path / "m.onnx"
    export_onnx(model, target, lengths=[4])
    # Mark the old pair, so that a new one (same model, same bytes) cannot pass for it.
    old = onnx.load(target, load_external_data=False)
    old.doc_string = "the previous export"
    onnx.save_model(old, target)
    with open(tmp_path / "m.onnx.data", "ab") as data:
        data.write(b"previous")
    before = contents(tmp_path)
    real_replace = os.replace

    def onnx_cannot_be_placed(source, destination):
        new_file = os.path.basename(source) == "m.onnx" and ".tmp" in os.fspath(source)
        if new_file and os.fspath(destination) == str(target):
            raise OSError(errno.EIO, "simulated I/O error")
        return real_replace(source, destination)

    monkeypatch.setattr(os, "replace", onnx_cannot_be_placed)
    with pytest.raises(OSError, match="simulated"):
        export_onnx(model, target, lengths=[4], overwrite=True)
    assert contents(tmp_path) == before  # the old pair, untouched, and nothing else


def test_an_interrupt_between_data_and_onnx_takes_the_data_back(monkeypatch, tmp_path, large):
    model = fx.reuse_graph(monkeypatch)
    real_claim = files_lib._claim

    def interrupted_before_onnx(source, destination):
        if destination.endswith(".onnx"):
            assert os.path.exists(destination + ".data")  # the data went first
            raise KeyboardInterrupt
        return real_claim(source, destination)

    monkeypatch.setattr(files_lib, "_claim", interrupted_before_onnx)
    with pytest.raises(KeyboardInterrupt):
        export_onnx(model, tmp_path / "m.onnx", lengths=[4])
    assert listing(tmp_path) == []


def test_an_onnx_that_appears_meanwhile_is_kept_and_the_data_taken_back(
    monkeypatch, tmp_path, large
):
    model = fx.reuse_graph(monkeypatch)
    target = tmp_path / "m.onnx"
    real_sweep = verify_lib.sweep

    def another_writer_meanwhile(*args, **kwargs):
        rows = real_sweep(*args, **kwargs)
        target.write_bytes(b"written by another process meanwhile")
        return rows

    monkeypatch.setattr(verify_lib, "sweep", another_writer_meanwhile)
    with pytest.raises(FileExistsError, match="already exists"):
        export_onnx(model, target, lengths=[4])
    assert contents(tmp_path) == {"m.onnx": b"written by another process meanwhile"}


@pytest.mark.parametrize("external", [True, False], ids=["external", "inline"])
def test_without_hard_links(monkeypatch, tmp_path, external):
    """File systems without hard links (FAT, some network mounts): claimed
    by a check and a rename, still never replacing an existing file."""
    if external:
        monkeypatch.setattr(onnx_lib, "EXTERNAL_DATA_THRESHOLD", 0)
    model = fx.reuse_graph(monkeypatch)

    def no_hard_links(source, destination):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_hard_links)
    target = tmp_path / "m.onnx"
    report = export_onnx(model, target, lengths=[4])
    expected = ["m.onnx", "m.onnx.data"] if external else ["m.onnx"]
    assert report.verified and listing(tmp_path) == expected
    assert_matches_keras(model, target)
    before = contents(tmp_path)
    with pytest.raises(FileExistsError, match="already exists"):
        export_onnx(model, target, lengths=[4])
    assert contents(tmp_path) == before


def test_overwriting_external_with_inline_removes_the_old_data(monkeypatch, tmp_path):
    model = fx.reuse_graph(monkeypatch)
    target = tmp_path / "m.onnx"
    monkeypatch.setattr(onnx_lib, "EXTERNAL_DATA_THRESHOLD", 0)
    export_onnx(model, target, lengths=[4])
    assert listing(tmp_path) == ["m.onnx", "m.onnx.data"]
    monkeypatch.setattr(onnx_lib, "EXTERNAL_DATA_THRESHOLD", 1 << 40)
    report = export_onnx(model, target, lengths=[4], overwrite=True)
    assert report.external_data is None
    assert listing(tmp_path) == ["m.onnx"]  # no .data left without its .onnx
    assert_matches_keras(model, target)


def test_a_missing_data_file_is_named(monkeypatch, tmp_path, large):
    model = fx.reuse_graph(monkeypatch)
    export_onnx(model, tmp_path / "m.onnx", lengths=[4])
    os.remove(tmp_path / "m.onnx.data")
    with pytest.raises(FileNotFoundError, match=r"m\.onnx\.data.*missing") as info:
        onnx_session(tmp_path / "m.onnx", provider="cpu")
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------
# Bad files and targets: one line, before any work, nothing left behind
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras_members(tmp_path_factory):
    """{member name: bytes} of a real `.keras` file of the small model."""
    model, _ = fx.converted()
    source = tmp_path_factory.mktemp("keras") / "source.keras"
    model.save(source)
    with zipfile.ZipFile(source) as archive:
        return {item: archive.read(item) for item in archive.namelist()}


def keras_archive(tmp_path, members, name, edit):
    """A `.keras` archive of `members` with `edit` applied."""
    members = edit(members)
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as archive:
        for item, data in members.items():
            archive.writestr(item, data)
    return path


def without_config(members):
    return {name: data for name, data in members.items() if name != "config.json"}


def bad_json(members):
    return {**members, "config.json": members["config.json"][:-7]}


def truncated_weights(members):
    (weights,) = [name for name in members if name.endswith(".h5")]
    return {**members, weights: members[weights][: len(members[weights]) // 2]}


@pytest.mark.parametrize(
    "edit, message",
    [
        (without_config, "no config.json"),
        (bad_json, "unreadable config.json"),
        (truncated_weights, "Cannot load"),
    ],
    ids=["no-config", "bad-json", "truncated-weights"],
)
def test_bad_keras_files(monkeypatch, tmp_path, keras_members, edit, message):
    path = keras_archive(tmp_path, keras_members, "bad.keras", edit)
    monkeypatch.setattr(conversion_lib, "convert", fail_converting)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ValueError, match=message) as info:
        export_onnx(path, out / "m.onnx")
    assert "\n" not in str(info.value) and "bad.keras" in str(info.value)
    assert listing(out) == []
    with pytest.raises(ValueError, match=message):
        load_keras_model(path)


def test_output_path_that_is_a_directory(monkeypatch, tmp_path):
    monkeypatch.setattr(conversion_lib, "convert", fail_converting)
    (tmp_path / "m.onnx").mkdir()
    model, _ = fx.converted()
    with pytest.raises(IsADirectoryError, match="is a directory"):
        export_onnx(model, tmp_path / "m.onnx")
    (tmp_path / "m.onnx").rmdir()
    (tmp_path / "m.onnx.data").mkdir()
    with pytest.raises(IsADirectoryError, match=r"is a directory: .*m\.onnx\.data"):
        export_onnx(model, tmp_path / "m.onnx")
    assert listing(tmp_path) == ["m.onnx.data"]


def _can_write(directory):
    """Whether this process can create a file in `directory` (root can,
    whatever the mode says)."""
    probe = directory / "probe"
    try:
        probe.write_bytes(b"")
    except PermissionError:
        return False
    probe.unlink()
    return True


def test_unwritable_directory(monkeypatch, tmp_path):
    monkeypatch.setattr(conversion_lib, "convert", fail_converting)
    model, _ = fx.converted()
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if _can_write(locked):
            # Root ignores the mode: make the OS's refusal what it would be.
            def refused(*args, **kwargs):
                raise PermissionError(errno.EACCES, "Permission denied")

            monkeypatch.setattr(files_lib.tempfile, "mkdtemp", refused)
        with pytest.raises(PermissionError, match="Cannot write in the output directory") as info:
            export_onnx(model, locked / "m.onnx")
        assert "\n" not in str(info.value) and "locked" in str(info.value)
        assert listing(locked) == []
    finally:
        locked.chmod(0o755)


def test_failed_verification_with_external_data_leaves_nothing(monkeypatch, tmp_path, large):
    model = fx.reuse_graph(monkeypatch)
    fx.keras_outputs_off_by_a_little(monkeypatch)
    with pytest.raises(ExportError, match="differs from Keras"):
        export_onnx(model, tmp_path / "m.onnx", lengths=[4])
    assert listing(tmp_path) == []
