"""The `keras-longformer` command.

    keras-longformer export MODEL.keras OUT.onnx [--opset N] [--lengths 1,511,4096]
                            [--no-verify] [--force]
    keras-longformer check OUT.onnx [--provider auto|cuda|cpu] [--batch B] [--length T]
    keras-longformer convert HF_DIR OUT.keras [--force]
    keras-longformer convert-to-long SRC OUT [--max-length 4096] [--window 256] [--force]
    keras-longformer bench [...]
    keras-longformer triton MODEL.onnx REPOSITORY [--name N] [--max-batch-size 8]
                            [--instance-kind gpu|cpu] [--force]
    keras-longformer serve-bench MODEL.onnx [MODEL2.onnx ...] [--batch-sizes 1,8]
                            [--lengths 512,4096] [--repeats 10] [--provider auto] [--json OUT]

Every command takes `--quiet` (nothing on stdout) and `--json` (one JSON
object on stdout: `command`, `ok`, `error` on failure, and what the command
recorded); `keras-longformer --version` prints the version. Every failure
is one line on stderr (`keras-longformer: error: ...`) and a non-zero exit
status, never a traceback. Python warnings are shown, one line each. A
command whose module cannot be imported is still listed, and says why when
run. tf2onnx, onnxruntime, torch and matplotlib are imported only by the
subcommand that needs them; Keras and its backend load with the package
(`import keras_longformer` registers the classes that `.keras` files name),
so even `--help` pays TensorFlow's start-up (about 10 s on two CPU cores).

A subcommand's `run(args)` returns an exit status, or a dict that becomes
its JSON report (exit status 0); `args.reporter` (a `Reporter`) takes its
human text and recorded fields.
"""

import argparse
import contextlib
import os
import subprocess
import sys

from keras_longformer.cli.check import add_check as _add_check
from keras_longformer.cli.convert import add_convert as _add_convert
from keras_longformer.cli.convert import add_convert_to_long as _add_convert_to_long
from keras_longformer.cli.support import PROG
from keras_longformer.cli.support import CommandError
from keras_longformer.cli.support import Reporter
from keras_longformer.cli.support import check_input_file as _check_input_file
from keras_longformer.cli.support import check_output_path as _check_output
from keras_longformer.cli.support import first_line as _first_line
from keras_longformer.cli.support import native_logs_hidden
from keras_longformer.cli.support import warnings_in_one_line


# ---------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------


def _parse_lengths(text):
    try:
        lengths = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated ints such as 1,511,4096, got {text!r}"
        ) from None
    if not lengths or any(n < 1 for n in lengths):
        raise argparse.ArgumentTypeError(f"lengths must be ints >= 1, got {text!r}")
    return lengths


def _add_export(subparsers):
    parser = subparsers.add_parser(
        "export",
        help="export a .keras model to ONNX and verify it against Keras",
        description=(
            "Export a .keras model to ONNX (named inputs and outputs, dynamic batch and "
            "sequence), then verify it against Keras in onnxruntime across lengths and "
            "global-token patterns. Exit status 0 only when the file was written and "
            "verified (or written, with --no-verify)."
        ),
    )
    parser.add_argument("model", help="path of a .keras model file")
    parser.add_argument("output", help="path of the .onnx file to write")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset, 13..18 (default 17)")
    parser.add_argument(
        "--lengths",
        type=_parse_lengths,
        default=None,
        help="comma-separated sequence lengths to verify at (default: a sweep "
        "around every attention window, plus a long one)",
    )
    parser.add_argument(
        "--precision", choices=("float32", "float16", "int8"), default="float32",
        help="float32 (default); float16: half-precision weights and matmuls for GPU serving; "
        "int8: onnxruntime's dynamic quantization of the weights for CPU serving",
    )
    parser.add_argument(
        "--hf-names", action="store_true",
        help="name the inputs input_ids, attention_mask, global_attention_mask (int64), "
        "as a Hugging Face tokenizer returns them",
    )
    parser.add_argument("--no-verify", action="store_true", help="skip the verification sweep")
    parser.add_argument("--force", action="store_true", help="replace an existing output file")
    parser.set_defaults(run=_run_export)


def _run_export(args):
    # Cheap checks first, before TensorFlow is imported.
    _check_input_file(args.model)
    _check_output(args.output, args.force)

    from keras_longformer.export import ExportError
    from keras_longformer.export import export_onnx

    out = args.reporter
    out.say(f"exporting {args.model} -> {args.output} (opset {args.opset})")
    try:
        report = export_onnx(
            args.model,
            args.output,
            opset=args.opset,
            precision=args.precision,
            input_names="huggingface" if args.hf_names else "keras",
            verify=not args.no_verify,
            lengths=args.lengths,
            overwrite=args.force,
            progress=out.wants_progress,
        )
    except ExportError as error:
        if error.report is not None:
            out.say(error.report.table())
            out.record(report=error.report)
        raise CommandError(str(error).splitlines()[0]) from None
    out.record(report=report, path=report.path, verified=report.verified)
    out.say(report.table())
    if report.verified:
        out.say(f"wrote {report.path} (verified)")
    else:
        out.say(f"wrote {report.path} (NOT verified: --no-verify)")
    return 0


# ---------------------------------------------------------------------------
# check (cli/check.py)
# ---------------------------------------------------------------------------


# ---------------------------------------------------------------------------
# bench (keras_longformer/bench.py provides the arguments and the run)
# ---------------------------------------------------------------------------


def _add_bench(subparsers):
    from keras_longformer import bench

    for name in ("add_arguments", "run_from_arguments"):
        if not hasattr(bench, name):
            raise ImportError(f"keras_longformer.bench has no {name}()")
    parser = subparsers.add_parser(
        "bench",
        help="benchmark the attention layer (or, with --model, a training step) against its peers",
        description=(bench.__doc__ or "").strip().splitlines()[0] if bench.__doc__ else None,
    )
    bench.add_arguments(parser)
    parser.set_defaults(run=bench.run_from_arguments)


# ---------------------------------------------------------------------------
# triton, serve-bench (export/triton.py and export/serve_bench_command.py provide the
# arguments and the run; nothing heavy is imported before a subcommand runs)
# ---------------------------------------------------------------------------


def _add_serving(subparsers):
    from keras_longformer.export import serve_bench_command
    from keras_longformer.export import triton

    for name, module, summary in (
        ("triton", triton, "write an .onnx file as a Triton Inference Server model"),
        ("serve-bench", serve_bench_command, "serving latency and tokens/s of .onnx files"),
    ):
        parser = subparsers.add_parser(name, help=summary, description=module.DESCRIPTION)
        module.add_arguments(parser)
        parser.set_defaults(run=module.run_from_arguments)


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------


def _add_guarded(subparsers, names, add):
    """Runs `add(subparsers)`; if its module cannot be imported, the commands
    `names` are still listed and, when run, say why in one line."""
    try:
        add(subparsers)
    except Exception as error:  # an ImportError, or any failure of a broken module
        reason = f"{type(error).__name__}: {_first_line(error)}"
        for name in names:
            if name in subparsers.choices:
                continue
            parser = subparsers.add_parser(name, help=f"(unavailable: {reason})")
            parser.set_defaults(run=_unavailable(name, reason), accepts_any=True)


def _unavailable(name, reason):
    def run(args):
        raise CommandError(f"the {name} command is unavailable: {reason}")

    return run


def _add_output_options(parser):
    """`--quiet` and `--json` on a subcommand (a command that defines its own
    `--json`, such as serve-bench's output file, keeps it)."""
    group = parser.add_mutually_exclusive_group()
    for flags, kwargs in (
        (("--quiet",), dict(help="print nothing on stdout (warnings and errors still go to stderr)")),
        (("--json",), dict(dest="json_report", help="print one JSON object (the command's report) "
                           "on stdout instead of text")),
    ):
        try:
            group.add_argument(*flags, action="store_true", **kwargs)
        except argparse.ArgumentError:
            pass


def build_parser():
    from keras_longformer import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Longformer for Keras 3: export to ONNX, check exported files, convert checkpoints.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "--verbose", action="store_true",
        help="show TensorFlow's and onnxruntime's own (native) log output",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_export(subparsers)
    _add_check(subparsers)
    _add_convert(subparsers)
    _add_convert_to_long(subparsers)
    _add_guarded(subparsers, ("bench",), _add_bench)
    _add_guarded(subparsers, ("triton", "serve-bench"), _add_serving)
    for subparser in subparsers.choices.values():
        _add_output_options(subparser)
    return parser


@contextlib.contextmanager
def _logging_configured(quiet):
    """Our log lines on stderr, one per message, for the command's duration.

    `main` may be called in-process (tests, notebooks): the loggers are
    restored afterwards so the caller's logging is as it was.
    """
    import logging

    # Python warnings are not filtered here: see `warnings_in_one_line`.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    ours = logging.getLogger("keras_longformer")
    others = [logging.getLogger(name) for name in ("tensorflow", "tf2onnx", "absl")]
    saved = (ours.handlers[:], ours.level, ours.propagate, [o.level for o in others])
    ours.handlers[:] = [handler]
    ours.setLevel(logging.WARNING if quiet else logging.INFO)
    ours.propagate = False
    for other in others:
        other.setLevel(logging.ERROR)
    try:
        yield
    finally:
        handlers, level, ours.propagate, levels = saved
        ours.handlers[:] = handlers
        ours.setLevel(level)
        for other, level in zip(others, levels):
            other.setLevel(level)


def _output_mode(args):
    if getattr(args, "json_report", False):
        return "json"
    return "quiet" if getattr(args, "quiet", False) else "text"


def _run(args):
    """Runs the command: `(exit status, one-line error or None)`."""
    try:
        with args.reporter.stdout_unless_chatty():
            result = args.run(args)
    except CommandError as error:
        return 1, str(error)
    except KeyboardInterrupt:
        return 130, "interrupted"
    except (OSError, ValueError, TypeError, RuntimeError) as error:
        return 1, _first_line(error)
    except Exception as error:  # never a traceback: one line, with the type
        return 1, f"{type(error).__name__}: {_first_line(error)}"
    if result is None or (isinstance(result, int) and not isinstance(result, bool)):
        return int(result or 0), None
    if isinstance(result, dict):
        args.reporter.record(**result)
    else:
        args.reporter.record(result=result)
    return 0, None


def _keras_backend():
    import keras

    return keras.backend.backend()


def main(argv=None):
    """Entry point of the `keras-longformer` console script; returns the exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "export" and _keras_backend() != "tensorflow":
        # tf2onnx converts TensorFlow graphs, and Keras chose its backend when
        # this package was imported: the export runs in a TensorFlow process
        # (a `.keras` file saved under any backend loads there).
        argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
        command = [sys.executable, "-m", "keras_longformer.cli", *argv]
        return subprocess.call(command, env=dict(os.environ, KERAS_BACKEND="tensorflow"))
    if extra and not getattr(args, "accepts_any", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    args.reporter = Reporter(args.command, _output_mode(args))
    with native_logs_hidden(not args.verbose), warnings_in_one_line(), _logging_configured(
        quiet=not args.reporter.chatty
    ):
        status, error = _run(args)
        if error is not None:
            prefix = f"{PROG}: " if status == 130 else f"{PROG}: error: "
            print(prefix + error, file=sys.stderr, flush=True)
        args.reporter.finish(error)
        sys.stdout.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
