"""The `keras-longformer` command.

    keras-longformer export MODEL.keras OUT.onnx [--opset N] [--lengths 1,511,4096]
                            [--no-verify] [--force]
    keras-longformer check OUT.onnx [--provider auto|cuda|cpu] [--batch B] [--length T]
    keras-longformer convert HF_DIR OUT.keras [--force]
    keras-longformer bench [...]
    keras-longformer triton MODEL.onnx REPOSITORY [--name N] [--max-batch-size 8]
                            [--instance-kind gpu|cpu] [--force]
    keras-longformer serve-bench MODEL.onnx [MODEL2.onnx ...] [--batch-sizes 1,8]
                            [--lengths 512,4096] [--repeats 10] [--provider auto] [--json OUT]

Every failure is one line on stderr (`keras-longformer: error: ...`) and a
non-zero exit status, never a traceback. Heavy modules (TensorFlow, tf2onnx,
onnxruntime) are imported only by the subcommand that needs them.
"""

import argparse
import contextlib
import os
import sys
import tempfile

PROG = "keras-longformer"


class CommandError(Exception):
    """A failure reported as one line and exit status 1."""


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
    parser.add_argument("--no-verify", action="store_true", help="skip the verification sweep")
    parser.add_argument("--force", action="store_true", help="replace an existing output file")
    parser.set_defaults(run=_run_export)


def _check_input_file(path):
    if not os.path.exists(path):
        raise CommandError(f"no such file: {path}")
    if not os.path.isfile(path):
        raise CommandError(f"not a file: {path}")
    if not os.access(path, os.R_OK):
        raise CommandError(f"cannot read {path}: permission denied")


def _check_output(path, force):
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CommandError(f"output directory does not exist: {directory}")
    if os.path.exists(path) and not force:
        raise CommandError(f"{path} already exists (use --force to replace it)")


def _run_export(args):
    # Cheap checks first, before TensorFlow is imported.
    _check_input_file(args.model)
    _check_output(args.output, args.force)

    from keras_longformer.export import ExportError
    from keras_longformer.export import export_onnx

    print(f"exporting {args.model} -> {args.output} (opset {args.opset})", flush=True)
    try:
        report = export_onnx(
            args.model,
            args.output,
            opset=args.opset,
            verify=not args.no_verify,
            lengths=args.lengths,
            overwrite=args.force,
            progress=sys.stderr.isatty() or bool(os.environ.get("KERAS_LONGFORMER_PROGRESS")),
        )
    except ExportError as error:
        if error.report is not None:
            print(error.report.table())
        raise CommandError(str(error).splitlines()[0]) from None
    print(report.table())
    if report.verified:
        print(f"wrote {report.path} (verified)")
    else:
        print(f"wrote {report.path} (NOT verified: --no-verify)")
    return 0


# ---------------------------------------------------------------------------
# check
# ---------------------------------------------------------------------------


def _add_check(subparsers):
    parser = subparsers.add_parser(
        "check",
        help="run an exported .onnx file on random inputs",
        description=(
            "Run an exported ONNX file in onnxruntime on random inputs and print the "
            "provider obtained, input and output shapes, and timing."
        ),
    )
    parser.add_argument("onnx", help="path of the .onnx file")
    parser.add_argument(
        "--provider", choices=("auto", "cuda", "cpu"), default="auto",
        help="execution provider (auto: CUDA when it can be created, else CPU)",
    )
    parser.add_argument("--batch", type=int, default=2, help="batch size (default 2)")
    parser.add_argument("--length", type=int, default=128, help="sequence length (default 128)")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs (default 10)")
    parser.set_defaults(run=_run_check)


def _run_check(args):
    import statistics
    import time

    import numpy as np

    _check_input_file(args.onnx)
    for name in ("batch", "length", "repeats"):
        if getattr(args, name) < 1:
            raise CommandError(f"--{name} must be >= 1, got {getattr(args, name)}")

    from keras_longformer.export import onnx_session
    from keras_longformer.export import verify as verify_lib
    from keras_longformer.export.onnx import read_metadata

    try:
        session = onnx_session(args.onnx, provider=args.provider)
    except Exception as error:
        if type(error).__name__ in ("ProviderUnavailableError",):
            raise CommandError(str(error)) from None
        raise CommandError(f"onnxruntime cannot load {args.onnx}: {_first_line(error)}") from None
    metadata = read_metadata(session)
    length = args.length
    max_length = metadata.get("max_sequence_length")
    if isinstance(max_length, int) and length > max_length:
        raise CommandError(f"--length {length} exceeds the model's max_sequence_length {max_length}")
    windows = metadata.get("windows") or []
    info = verify_lib.ModelInfo(
        windows=[tuple(w) for w in windows],
        vocabulary_size=metadata.get("vocabulary_size"),
        pad_token_id=metadata.get("pad_token_id"),
        max_sequence_length=max_length,
    )
    specs = {}
    for value in session.get_inputs():
        shape = tuple(d if isinstance(d, int) else None for d in value.shape)
        specs[value.name] = (shape, _numpy_dtype(value.type))
    try:
        feeds = verify_lib.make_inputs(
            specs, length, "first", info, rng=np.random.default_rng(0), batch_size=args.batch
        )
    except ValueError as error:
        raise CommandError(str(error)) from None
    start = time.perf_counter()
    outputs = session.run(None, feeds)
    first = time.perf_counter() - start
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - start)

    print(f"file:      {args.onnx}")
    print(f"providers: {', '.join(session.get_providers())} (asked: {args.provider})")
    if metadata:
        shown = {k: v for k, v in metadata.items() if k != "windows"}
        print("metadata:  " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    print("inputs:")
    for value in session.get_inputs():
        fed = feeds[value.name]
        print(f"  {value.name:<20} {_dims(value.shape)} {value.type} -> fed {fed.shape} {fed.dtype}")
    print("outputs:")
    finite = True
    for value, array in zip(session.get_outputs(), outputs):
        array = np.asarray(array)
        if array.dtype.kind == "f":
            finite = finite and bool(np.isfinite(array).all())
        print(f"  {value.name:<20} {_dims(value.shape)} {value.type} -> {array.shape} {array.dtype}")
    print(
        f"timing:    batch {args.batch} x length {length}: first run {first * 1e3:.2f} ms, "
        f"median {statistics.median(times) * 1e3:.2f} ms, min {min(times) * 1e3:.2f} ms "
        f"over {args.repeats} runs"
    )
    if not finite:
        raise CommandError("outputs contain NaN or inf")
    print("outputs finite: yes")
    return 0


def _numpy_dtype(onnx_type):
    mapping = {
        "tensor(bool)": "bool",
        "tensor(int32)": "int32",
        "tensor(int64)": "int64",
        "tensor(float)": "float32",
        "tensor(float16)": "float16",
        "tensor(double)": "float64",
    }
    if onnx_type not in mapping:
        raise CommandError(f"cannot make random inputs of type {onnx_type}")
    return mapping[onnx_type]


def _dims(shape):
    return "[" + ", ".join(str(d) for d in shape) + "]"


# ---------------------------------------------------------------------------
# convert
# ---------------------------------------------------------------------------


def _add_convert(subparsers):
    parser = subparsers.add_parser(
        "convert",
        help="convert a Hugging Face Longformer checkpoint to a .keras file",
        description="Convert a Hugging Face Longformer checkpoint directory to a .keras file.",
    )
    parser.add_argument("checkpoint", help="Hugging Face checkpoint directory (config.json + weights)")
    parser.add_argument("output", help="path of the .keras file to write")
    parser.add_argument(
        "--task", default="backbone",
        help="backbone (default), auto (the checkpoint's own class), masked_lm, classifier, "
        "token_classifier or question_answering",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing output file")
    parser.set_defaults(run=_run_convert)


def _run_convert(args):
    if not os.path.isdir(args.checkpoint):
        raise CommandError(f"not a checkpoint directory: {args.checkpoint}")
    if not args.output.endswith(".keras"):
        raise CommandError(f"the output must end in .keras, got {args.output}")
    _check_output(args.output, args.force)
    try:
        from keras_longformer.convert import from_huggingface
    except ImportError:
        raise CommandError(
            "keras_longformer.convert.from_huggingface is not available in this version"
        ) from None

    model = from_huggingface(args.checkpoint, task=args.task)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{os.path.basename(args.output)}.",
        suffix=".tmp.keras",
        dir=os.path.dirname(os.path.abspath(args.output)),
    )
    os.close(handle)
    try:
        model.save(temporary)
        os.replace(temporary, args.output)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    print(f"wrote {args.output} ({type(model).__name__}, {model.count_params():,} parameters)")
    return 0


# ---------------------------------------------------------------------------
# bench (keras_longformer/bench.py provides the arguments and the run)
# ---------------------------------------------------------------------------


def _add_bench(subparsers):
    try:
        from keras_longformer import bench
    except ImportError:
        return
    if not (hasattr(bench, "add_arguments") and hasattr(bench, "run_from_arguments")):
        return
    parser = subparsers.add_parser(
        "bench",
        help="benchmark the attention layer against its peers",
        description=(bench.__doc__ or "").strip().splitlines()[0] if bench.__doc__ else None,
    )
    bench.add_arguments(parser)
    parser.set_defaults(run=lambda args: bench.run_from_arguments(args) or 0)


# ---------------------------------------------------------------------------
# triton, serve-bench (export/triton.py and export/serve_bench.py provide the
# arguments and the run; nothing heavy is imported before a subcommand runs)
# ---------------------------------------------------------------------------


def _add_serving(subparsers):
    from keras_longformer.export import serve_bench
    from keras_longformer.export import triton

    for name, module, summary in (
        ("triton", triton, "write an .onnx file as a Triton Inference Server model"),
        ("serve-bench", serve_bench, "serving latency and tokens/s of .onnx files"),
    ):
        parser = subparsers.add_parser(name, help=summary, description=module.DESCRIPTION)
        module.add_arguments(parser)
        parser.set_defaults(run=module.run_from_arguments)


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------


def build_parser():
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Longformer for Keras 3: export to ONNX, check exported files, convert checkpoints.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument(
        "--verbose", action="store_true",
        help="show TensorFlow's and onnxruntime's own (native) log output",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_export(subparsers)
    _add_check(subparsers)
    _add_convert(subparsers)
    _add_bench(subparsers)
    _add_serving(subparsers)
    return parser


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@contextlib.contextmanager
def _native_logs_hidden(enabled):
    """Sends what native code writes to file descriptor 2 (TensorFlow's and
    onnxruntime's C++ logs, which no environment variable silences before
    absl is initialized) to a scratch file, while Python's `sys.stderr`
    (our messages, the progress bar) still reaches the terminal."""
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


def _configure_logging():
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    ours = logging.getLogger("keras_longformer")
    ours.handlers[:] = [handler]
    ours.setLevel(logging.INFO)
    ours.propagate = False
    for name in ("tensorflow", "tf2onnx", "absl"):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv=None):
    """Entry point of the `keras-longformer` console script; returns the exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from keras_longformer import __version__

        print(f"{PROG} {__version__}")
        return 0
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    with _native_logs_hidden(not args.verbose):
        _configure_logging()
        try:
            status = args.run(args)
        except CommandError as error:
            print(f"{PROG}: error: {error}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted", file=sys.stderr)
            return 130
        except (OSError, ValueError, TypeError, RuntimeError) as error:
            print(f"{PROG}: error: {_first_line(error)}", file=sys.stderr)
            return 1
        except Exception as error:  # never a traceback: one line, with the type
            print(f"{PROG}: error: {type(error).__name__}: {_first_line(error)}", file=sys.stderr)
            return 1
        finally:
            sys.stdout.flush()
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
