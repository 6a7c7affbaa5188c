"""Writing an export: checks before any work, staging beside the target, atomic publish.

An export is one `.onnx` file, or an `.onnx` file and its external data
`<name>.onnx.data`. Both are written into a staging directory beside the
target (same file system, so renames are atomic) and published so that:
- an existing file is never replaced unless `overwrite`;
- the `.onnx` is the commit point: it is placed last, so an `.onnx` never
  points at a `.data` file it was not written with, and a `.data` file is
  never left or replaced without its `.onnx`: any failure (an error, an
  interrupt) puts back what was there.
Without `overwrite`, files are claimed with `os.link`, which fails if the
name exists; on file systems without hard links, with a check then a rename.
"""

import contextlib
import os
import shutil
import tempfile

from keras_longformer.atomic_files import replace_directory

DATA_SUFFIX = ".data"
# With external data, tensors of at least this many bytes go to the .data file.
EXTERNAL_TENSOR_BYTES = 1024


def _exists_error(path):
    return FileExistsError(
        f"{path!r} already exists (pass overwrite=True / --force to replace it)"
    )


def data_path_of(output_path):
    """Where the external data of `output_path` lives."""
    return output_path + DATA_SUFFIX


def check_target(output_path, overwrite):
    """Checks `output_path` before any work; returns it as an absolute path.

    Raises:
        FileNotFoundError: its directory does not exist.
        IsADirectoryError: it, or its `.data` name, is a directory.
        FileExistsError: it exists and `overwrite` is false.
    """
    output_path = os.path.abspath(os.fspath(output_path))
    directory = os.path.dirname(output_path)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"Output directory does not exist: {directory!r}")
    for path in (output_path, data_path_of(output_path)):
        if os.path.isdir(path):
            raise IsADirectoryError(f"Output path is a directory: {path!r}")
    if os.path.exists(output_path) and not overwrite:
        raise _exists_error(output_path)
    return output_path


def check_data_target(output_path, overwrite):
    """Checks, before any work, that external data may be written beside `output_path`."""
    data_path = data_path_of(output_path)
    if os.path.exists(data_path) and not overwrite:
        raise _exists_error(data_path)


@contextlib.contextmanager
def staging_directory(output_path):
    """A fresh directory beside `output_path`, removed on exit.

    Creating it is also the check that the directory is writable, made
    before any conversion.
    """
    directory, filename = os.path.split(output_path)
    try:
        staging = tempfile.mkdtemp(prefix=f".{filename}.", suffix=".tmp", dir=directory)
    except OSError as error:
        raise PermissionError(
            f"Cannot write in the output directory {directory!r}: "
            f"{error.strerror or error}"
        ) from None
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def save(model_proto, path, *, external_data):
    """Writes `model_proto` to `path`; with `external_data`, every tensor of
    `EXTERNAL_TENSOR_BYTES` or more goes to `path + ".data"` (referenced by
    its base name).

    Returns the data file's path, or None (also when no tensor was large
    enough to go there).
    """
    import onnx

    if not external_data:
        onnx.save_model(model_proto, path)
        return None
    location = os.path.basename(data_path_of(path))
    onnx.save_model(
        model_proto,
        path,
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=location,
        size_threshold=EXTERNAL_TENSOR_BYTES,
    )
    return data_path_of(path) if os.path.exists(data_path_of(path)) else None


def external_locations(path):
    """File names the ONNX file at `path` reads its external data from
    (empty for a file that is not ONNX or has none)."""
    import onnx

    try:
        proto = onnx.load(path, load_external_data=False)
    except Exception:  # not an ONNX file: it references nothing
        return set()
    locations = set()
    for tensor in proto.graph.initializer:
        if onnx.external_data_helper.uses_external_data(tensor):
            for entry in tensor.external_data:
                if entry.key == "location":
                    locations.add(entry.value)
    return locations


def publish(staged_path, output_path, *, staged_data=None, overwrite=False):
    """Moves the staged `.onnx` (and its staged `.data`) to `output_path`.

    Args:
        staged_path: the `.onnx` file in the staging directory.
        output_path: where it goes.
        staged_data: its external data file in the staging directory, or
            None; it goes to `output_path + ".data"`.
        overwrite: whether existing files may be replaced.
    """
    if overwrite:
        _replace(staged_path, output_path, staged_data)
    else:
        _claim_all(staged_path, output_path, staged_data)


def _claim_all(staged_path, output_path, staged_data):
    placed = []
    try:
        if staged_data is not None:
            _claim(staged_data, data_path_of(output_path))
            placed.append(data_path_of(output_path))
        _claim(staged_path, output_path)
    except BaseException:
        for path in placed:  # ours: claimed a moment ago
            os.remove(path)
        raise


def _claim(source, destination):
    """Gives `source` the name `destination`, failing if that name exists."""
    try:
        os.link(source, destination)  # atomic: fails if destination exists
        return
    except FileExistsError:
        raise _exists_error(destination) from None
    except OSError:
        pass  # no hard links on this file system (FAT, some network mounts)
    if os.path.lexists(destination):
        raise _exists_error(destination)
    os.rename(source, destination)


def _replace(staged_path, output_path, staged_data):
    data_path = data_path_of(output_path)
    old_data_is_ours = os.path.basename(data_path) in external_locations(output_path)
    if staged_data is None and not old_data_is_ours:
        os.replace(staged_path, output_path)  # one file, one atomic rename
        return
    staging = os.path.dirname(staged_path)
    aside = {}
    placed = []
    try:
        # The old .onnx goes first, so it never points at the new .data.
        for path, move in ((output_path, True), (data_path, old_data_is_ours or staged_data)):
            if move and os.path.lexists(path):
                aside[path] = os.path.join(staging, "previous-" + os.path.basename(path))
                os.replace(path, aside[path])
        if staged_data is not None:
            os.replace(staged_data, data_path)
            placed.append(data_path)
        os.replace(staged_path, output_path)
    except BaseException:
        for path in placed:
            if path not in aside:
                os.remove(path)
        for path, previous in aside.items():
            os.replace(previous, path)
        raise


def publish_directory(staging, target, overwrite):
    """Renames the directory `staging` to `target` (beside it); an existing
    `target` is replaced only if `overwrite`, atomically where the system
    can (see `keras_longformer.atomic_files.replace_directory`)."""
    replace_directory(staging, target, overwrite)
