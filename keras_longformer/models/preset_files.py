"""Writing a keras-hub preset directory all at once (for `keras-longformer convert`)."""

import os
import shutil
import tempfile

from keras_longformer.atomic_files import replace_directory


def save_preset(model, directory, overwrite=False):
    """`model.save_to_preset(directory)`, atomically.

    The preset is written into a scratch directory beside `directory` and
    renamed into place (swapped with an existing one in one step where the
    system can), so a failed, interrupted or killed save leaves the old
    preset or the new one, never a partial one; an existing `directory` is
    replaced only with `overwrite=True`.

    Args:
        model: a `LongformerBackbone` or task model (anything with
            `save_to_preset`).
        directory: path of the preset directory to write.
        overwrite: bool, replace an existing `directory`.

    Returns:
        `directory`.
    """
    target = os.path.abspath(os.fspath(directory))
    if os.path.exists(target) and not overwrite:
        raise ValueError(
            f"`directory` already exists; pass overwrite=True to replace it. "
            f"Received: directory={directory!r}"
        )
    parent = os.path.dirname(target)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=parent)
    try:
        model.save_to_preset(staging)
        replace_directory(staging, target, overwrite)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging)
    return directory
