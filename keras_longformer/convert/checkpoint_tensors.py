"""`CheckpointTensors`: the weights of a Hugging Face checkpoint, read one at a time.

Safetensors go through the safetensors package's own reader (memory-mapped,
`framework="numpy"`, bfloat16 as `ml_dtypes.bfloat16`), a legacy
`pytorch_model.bin` only through `torch.load(weights_only=True, mmap=True)`.
Nothing is read until a tensor is asked for, so converting a checkpoint
holds the Keras model plus one tensor, never a second copy of the file.
"""

import collections.abc
import json
import os

# Files `save_pretrained` writes, in the order they are looked for:
# (name, format, sharded).
WEIGHT_FILES = (
    ("model.safetensors", "safetensors", False),
    ("model.safetensors.index.json", "safetensors", True),
    ("pytorch_model.bin", "bin", False),
    ("pytorch_model.bin.index.json", "bin", True),
)


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _open_safetensors(path):
    # numpy knows "bfloat16" only once ml_dtypes (a Keras dependency) is
    # imported; safetensors then returns BF16 tensors without widening them.
    import ml_dtypes  # noqa: F401
    from safetensors import safe_open

    try:
        handle = safe_open(path, framework="numpy")
        keys = list(handle.keys())
    except Exception as error:  # safetensors raises its own SafetensorError
        raise ValueError(
            f"{path} is not a readable safetensors file (truncated or corrupt?): "
            f"{_first_line(error)}"
        ) from None
    return keys, handle.get_tensor


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _open_torch_bin(path):
    torch = _torch()
    if torch is None:
        raise ImportError(
            f"{path} is a PyTorch pickle, which needs torch to read safely "
            "(`torch.load(weights_only=True)`). Install torch (the CPU build: "
            "`pip install torch --index-url https://download.pytorch.org/whl/cpu`), "
            "or convert the checkpoint to `model.safetensors` where torch is "
            "installed."
        ) from None
    try:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as error:
            if "mmap" not in str(error):
                raise
            # Files older than torch's zip format (torch < 1.6) cannot be mapped.
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises RuntimeError, UnpicklingError, EOFError
        raise ValueError(
            f"{path} is not a readable PyTorch checkpoint (truncated or corrupt?): "
            f"{_first_line(error)}"
        ) from None

    def get_tensor(key):
        value = state[key]
        if value.dtype == torch.bfloat16:
            import ml_dtypes

            return value.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
        return value.numpy()

    return list(state), get_tensor


_OPENERS = {"safetensors": _open_safetensors, "bin": _open_torch_bin}


def _shard_files(index_file):
    try:
        with open(index_file, encoding="utf-8") as file:
            weight_map = json.load(file)["weight_map"]
        shards = sorted(set(weight_map.values()))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(
            f"{index_file} is not a shard index (a JSON object with a `weight_map` "
            f"of key -> file): {type(error).__name__}: {_first_line(error)}"
        ) from None
    directory = os.path.dirname(index_file)
    files = [os.path.join(directory, shard) for shard in shards]
    for file in files:
        if not os.path.isfile(file):
            raise FileNotFoundError(f"{index_file} names the shard {file}, which does not exist")
    return files


class CheckpointTensors(collections.abc.Mapping):
    """A read-only mapping of Hugging Face key -> numpy array, read on access.

    Args:
        files: paths of weight files of one checkpoint (its shards).
        fmt: `"safetensors"` or `"bin"`.

    Every file is opened (and its header checked) here, so a truncated or
    corrupt file is a `ValueError` naming it before any weight is used;
    the arrays themselves are read only when indexed.
    """

    def __init__(self, files, fmt):
        if fmt not in _OPENERS:
            raise ValueError(f"`fmt` must be one of {tuple(_OPENERS)}. Received: fmt={fmt!r}")
        self.files = tuple(files)
        self._readers = {}
        for file in self.files:
            keys, get_tensor = _OPENERS[fmt](file)
            for key in keys:
                self._readers[key] = get_tensor

    def __getitem__(self, key):
        return self._readers[key](key)

    def __iter__(self):
        return iter(self._readers)

    def __len__(self):
        return len(self._readers)


def load_state_dict(path):
    """The weights of the Hugging Face checkpoint directory `path`.

    Looks, in order, for `model.safetensors`, a sharded
    `model.safetensors.index.json`, `pytorch_model.bin` and a sharded
    `pytorch_model.bin.index.json`. Safetensors are read without torch; a
    `.bin` only with `torch.load(weights_only=True)`, which never unpickles
    arbitrary objects.

    Returns:
        A `CheckpointTensors` (a mapping of HF key -> numpy array, each
        read when it is indexed).

    Raises:
        FileNotFoundError: no weight file, or a shard the index names is missing.
        ValueError: a weight file or index that cannot be read, naming it.
        ImportError: a `.bin` checkpoint without torch installed.
    """
    for name, fmt, sharded in WEIGHT_FILES:
        file = os.path.join(path, name)
        if os.path.isfile(file):
            return CheckpointTensors(_shard_files(file) if sharded else [file], fmt)
    raise FileNotFoundError(
        f"No weights in {path}: expected one of "
        + ", ".join(name for name, _, _ in WEIGHT_FILES)
    )
