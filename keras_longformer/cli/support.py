"""What every `keras-longformer` command shares.

- `CommandError` and `first_line`: a failure reported as one line.
- `check_input_file`, `check_output_path`: path checks made before any work.
- `Reporter`: a command's human text (stdout), or nothing (`--quiet`), or
  one JSON object (`--json`) holding what the command recorded.
- `warnings_in_one_line`: Python warnings stay visible (never
  filtered), each as one `keras-longformer: warning: ...` line on stderr.
- `native_logs_hidden`: TensorFlow's and onnxruntime's C++ logs, which
  no Python setting reaches, go to a scratch file unless `--verbose`.
"""

import contextlib
import dataclasses
import json
import os
import sys
import tempfile

PROG = "keras-longformer"
MODES = ("text", "quiet", "json")


class CommandError(Exception):
    """A failure reported as one line and exit status 1."""


def first_line(error):
    """The first line of an exception's message (its type when it has none)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def check_input_file(path):
    """A readable file at `path`, else a `CommandError` naming it."""
    if not os.path.exists(path):
        raise CommandError(f"no such file: {path}")
    if not os.path.isfile(path):
        raise CommandError(f"not a file: {path}")
    if not os.access(path, os.R_OK):
        raise CommandError(f"cannot read {path}: permission denied")


def check_output_path(path, force):
    """`path` can be written: its directory exists, and it does not unless `force`."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CommandError(f"output directory does not exist: {directory}")
    if os.path.exists(path) and not force:
        raise CommandError(f"{path} already exists (use --force to replace it)")


def _jsonable(value):
    """`json.dumps` fallback: dataclasses, numpy values and paths."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


class Reporter:
    """The output of one command.

    Args:
        command: the subcommand's name, written into the JSON report.
        mode: `"text"` (human text on stdout), `"quiet"` (nothing on stdout;
            warnings and errors still reach stderr) or `"json"` (one JSON
            object on stdout when the command ends, nothing else).
    """

    def __init__(self, command, mode="text"):
        if mode not in MODES:
            raise ValueError(f"`mode` must be one of {MODES}. Received: mode={mode!r}")
        self.command = command
        self.mode = mode
        self.fields = {}

    @property
    def chatty(self):
        """Whether human text (and progress bars) are wanted."""
        return self.mode == "text"

    @property
    def wants_progress(self):
        """Progress bars: in text mode, on a terminal (or when
        KERAS_LONGFORMER_PROGRESS is set, as for a log that is watched)."""
        return self.chatty and (sys.stderr.isatty() or bool(os.environ.get("KERAS_LONGFORMER_PROGRESS")))

    def say(self, text):
        """Human text, printed in text mode only."""
        if self.chatty:
            print(text, flush=True)

    def record(self, **fields):
        """Values for the JSON report (also kept in text mode, for tests)."""
        self.fields.update(fields)

    def finish(self, error=None):
        """Writes the JSON report (json mode); `error` is the one-line failure."""
        if self.mode != "json":
            return
        report = {"command": self.command, "ok": error is None}
        if error is not None:
            report["error"] = error
        report.update(self.fields)
        sys.stdout.write(json.dumps(report, default=_jsonable, indent=2) + "\n")
        sys.stdout.flush()

    @contextlib.contextmanager
    def stdout_unless_chatty(self):
        """Captures what a command prints itself (`bench`, `triton`, ...)
        outside text mode, so that `--quiet` prints nothing and `--json`
        prints only JSON; the captured lines go into the report."""
        if self.chatty:
            yield
            return
        import io

        captured = io.StringIO()
        try:
            with contextlib.redirect_stdout(captured):
                yield
        finally:
            lines = captured.getvalue().splitlines()
            if lines:
                self.record(output=lines)


@contextlib.contextmanager
def warnings_in_one_line():
    """Python warnings, unfiltered, as one stderr line each (no source echo)."""
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):
        text = " ".join(str(message).split())
        print(f"{PROG}: warning: {category.__name__}: {text}", file=file or sys.stderr, flush=True)

    previous = warnings.showwarning
    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


@contextlib.contextmanager
def native_logs_hidden(enabled):
    """Sends what native code writes to file descriptor 2 (TensorFlow's and
    onnxruntime's C++ logs, which no environment variable silences before
    absl is initialized) to a scratch file, while Python's `sys.stderr`
    (our messages, warnings, the progress bar) still reaches the terminal."""
    if not enabled:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real fd 2 (embedded)
        yield
        return
    python_stderr = sys.stderr
    sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1, errors="replace")
    scratch = tempfile.TemporaryFile()
    os.dup2(scratch.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        sys.stderr.close()
        sys.stderr = python_stderr
        scratch.close()
