"""The exporter's own exceptions."""

import os


class ExportError(RuntimeError):
    """An export that could not be written or did not verify.

    `report` holds the `ExportReport` (with the failing verification table)
    when the conversion got as far as verification, else None.
    """

    def __init__(self, message, report=None):
        super().__init__(message)
        self.report = report


class UnknownLayerError(ValueError):
    """A `.keras` file uses layer classes that are not registered."""

    def __init__(self, path, class_names):
        self.class_names = list(class_names)
        super().__init__(
            f"{os.fspath(path)!r} uses layer class(es) this package does not know: "
            f"{', '.join(self.class_names)}. Import the module that registers them "
            "(keras.saving.register_keras_serializable) before exporting."
        )


def one_line(error):
    """`error` as one line of at most ~400 characters."""
    text = " ".join(str(error).split())
    return (text[:400] + "...") if len(text) > 400 else text or type(error).__name__


def error_chain(error):
    """The messages of `error` and its causes, one per line."""
    texts = []
    while error is not None and len(texts) < 10:
        texts.append(str(error))
        error = error.__cause__ or error.__context__
    return "\n".join(texts)
