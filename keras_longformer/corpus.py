"""Real text every Python installation carries: the standard library's sources.

The examples train on it when no file is given (nothing is downloaded):
`standard_library_documents()` returns the top-level modules' sources,
one document per file, sorted by name so that every machine with the same
Python splits them the same way.
"""

import glob
import os
import sysconfig


def standard_library_documents(min_chars=1, held_out_every=10):
    """The standard library's `*.py` files as `(train, held_out)` lists of texts.

    Args:
        min_chars: int, files shorter than this are left out.
        held_out_every: int >= 2, every `held_out_every`-th file (in name
            order) is held out.

    Returns:
        `(train, held_out)`, two lists of strings.

    Raises:
        FileNotFoundError: this Python has no standard library sources
            (some embedded builds ship only bytecode).
    """
    if held_out_every < 2:
        raise ValueError(f"`held_out_every` must be >= 2. Received: held_out_every={held_out_every}")
    directory = sysconfig.get_paths()["stdlib"]
    texts = []
    for path in sorted(glob.glob(os.path.join(directory, "*.py"))):
        with open(path, encoding="utf-8", errors="replace") as file:
            text = file.read()
        if len(text) >= min_chars:
            texts.append(text)
    if not texts:
        raise FileNotFoundError(f"No Python sources in {directory}: give a text file instead.")
    held_out = texts[held_out_every - 1 :: held_out_every]
    train = [text for i, text in enumerate(texts) if (i + 1) % held_out_every]
    return train, held_out
