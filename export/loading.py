"""`load_keras_model`: a `.keras` file with this package's layers registered."""

import contextlib
import importlib
import json
import os
import re
import shutil
import tempfile
import zipfile

from keras_longformer.export.errors import UnknownLayerError
from keras_longformer.export.errors import error_chain
from keras_longformer.export.errors import one_line


def load_keras_model(path):
    """Loads a `.keras` file with this package's layers registered.

    Raises `FileNotFoundError`, `ValueError` (not a Keras model file, a bad
    `config.json`, unreadable weights) or `UnknownLayerError` (naming every
    class it cannot resolve), each with one line naming the file.
    """
    import keras

    import keras_longformer  # noqa: F401  (registers the layers)

    with contextlib.suppress(ImportError):
        import keras_longformer.models  # noqa: F401

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such file: {path!r}")
    if not os.path.isfile(path):
        raise ValueError(f"{path!r} is not a file (expected a .keras model file)")
    if not os.access(path, os.R_OK):
        raise PermissionError(f"Cannot read {path!r}: permission denied")
    config = _read_config(path)
    unknown = _unknown_classes(config)
    if unknown:
        raise UnknownLayerError(path, unknown)
    with _with_keras_extension(path) as loadable:
        try:
            model = keras.saving.load_model(loadable, compile=False)
        except Exception as error:
            missing = re.findall(r"Could not locate (?:class|function) '([^']+)'", error_chain(error))
            if missing:
                raise UnknownLayerError(path, dict.fromkeys(missing)) from error
            raise ValueError(f"Cannot load {path!r} as a Keras model: {one_line(error)}") from error
    if not isinstance(model, keras.Model):
        raise ValueError(f"{path!r} holds a {type(model).__name__}, not a keras.Model")
    return model


def _read_config(path):
    """The parsed `config.json` of a `.keras` archive."""
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path!r} is not a Keras model file (a .keras zip archive)")
    try:
        with zipfile.ZipFile(path) as archive:
            if "config.json" not in archive.namelist():
                raise ValueError(f"{path!r} is a zip file but not a Keras model (no config.json)")
            text = archive.read("config.json")
    except zipfile.BadZipFile as error:
        raise ValueError(f"{path!r} is a damaged zip archive: {one_line(error)}") from None
    try:
        config = json.loads(text)
    except ValueError as error:
        raise ValueError(f"{path!r} has an unreadable config.json: {one_line(error)}") from None
    if not isinstance(config, dict):
        raise ValueError(
            f"{path!r} has a config.json that is not a JSON object. "
            f"Received: {type(config).__name__}"
        )
    return config


@contextlib.contextmanager
def _with_keras_extension(path):
    """`path`, or a temporary copy named `*.keras` (Keras insists on it)."""
    if path.endswith(".keras"):
        yield path
        return
    handle, copy = tempfile.mkstemp(suffix=".keras")
    os.close(handle)
    try:
        shutil.copyfile(path, copy)
        yield copy
    finally:
        os.remove(copy)


def _unknown_classes(config):
    """Class names in a saved config that Keras cannot resolve."""
    unknown = []

    def walk(node):
        if isinstance(node, dict):
            if "class_name" in node and "config" in node and not _resolvable(node):
                name = node.get("registered_name") or node["class_name"]
                if name not in unknown:
                    unknown.append(name)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    return unknown


def _resolvable(entry):
    import keras

    class_name = entry.get("class_name")
    module = entry.get("module") or ""
    registered = entry.get("registered_name")
    if not isinstance(class_name, str) or class_name.startswith("__"):
        return True  # Keras's own markers: __tensor__, __numpy__, __lambda__, ...
    if module == "builtins" or class_name == "function":
        return True
    for name in (registered, class_name):
        if isinstance(name, str) and keras.saving.get_registered_object(name) is not None:
            return True
    if module.split(".")[0] in ("keras", "keras_hub"):
        try:
            return hasattr(importlib.import_module(module), class_name)
        except Exception:  # a module path Keras itself would also fail to import
            return False
    if module:
        return False  # Keras resolves other modules' classes only by registration.
    return hasattr(keras.layers, class_name) or hasattr(keras, class_name)
