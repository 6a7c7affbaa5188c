"""`keras-longformer check`: run an exported `.onnx` file on random inputs.

Prints (or, with `--json`, reports) the provider obtained, the metadata
the exporter wrote, input and output shapes, and timing through
`keras_longformer.timing.time_calls`. A length past the file's
`max_sequence_length` metadata is refused before anything runs.
"""

from keras_longformer.cli.support import CommandError
from keras_longformer.cli.support import check_input_file
from keras_longformer.cli.support import first_line


def add_check(subparsers):
    """Adds the `check` subcommand to `subparsers`."""
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
    import numpy as np

    # Cheap checks first: before onnxruntime is imported or the file read.
    for name in ("batch", "length", "repeats"):
        if getattr(args, name) < 1:
            raise CommandError(f"--{name} must be an int >= 1. Received: --{name} {getattr(args, name)}")
    check_input_file(args.onnx)

    from keras_longformer.export import onnx_session
    from keras_longformer.export import read_metadata
    from keras_longformer.export import verify as verify_lib
    from keras_longformer.export.dtypes import input_specs
    from keras_longformer.timing import time_calls

    try:
        session = onnx_session(args.onnx, provider=args.provider)
    except Exception as error:
        if type(error).__name__ in ("ProviderUnavailableError",):
            raise CommandError(str(error)) from None
        raise CommandError(f"onnxruntime cannot load {args.onnx}: {first_line(error)}") from None
    metadata = read_metadata(session)
    length = args.length
    max_length = metadata.get("max_sequence_length")
    if isinstance(max_length, int) and length > max_length:
        raise CommandError(
            f"--length {length} exceeds the max_sequence_length {max_length} in "
            f"{args.onnx}'s metadata. Received: --length {length}"
        )
    windows = metadata.get("windows") or []
    info = verify_lib.ModelInfo(
        windows=[tuple(w) for w in windows],
        vocabulary_size=metadata.get("vocabulary_size"),
        pad_token_id=metadata.get("pad_token_id"),
        max_sequence_length=max_length,
    )
    try:
        feeds = verify_lib.make_inputs(
            input_specs(session), length, "first", info,
            rng=np.random.default_rng(0), batch_size=args.batch,
        )
    except ValueError as error:
        raise CommandError(str(error)) from None
    first_outputs = []

    def run():
        outputs = session.run(None, feeds)
        if not first_outputs:
            first_outputs.append(outputs)
        return outputs

    timing = time_calls(run, repeats=args.repeats)
    outputs = first_outputs[0]

    out = args.reporter
    providers = session.get_providers()
    out.say(f"file:      {args.onnx}")
    out.say(f"providers: {', '.join(providers)} (asked: {args.provider})")
    if metadata:
        shown = {k: v for k, v in metadata.items() if k != "windows"}
        out.say("metadata:  " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    out.say("inputs:")
    inputs = {}
    for value in session.get_inputs():
        fed = feeds[value.name]
        inputs[value.name] = {"dims": value.shape, "type": value.type, "fed": fed.shape}
        out.say(f"  {value.name:<20} {_dims(value.shape)} {value.type} -> fed {fed.shape} {fed.dtype}")
    out.say("outputs:")
    finite = True
    results = {}
    for value, array in zip(session.get_outputs(), outputs):
        array = np.asarray(array)
        if array.dtype.kind == "f":
            finite = finite and bool(np.isfinite(array).all())
        results[value.name] = {"dims": value.shape, "type": value.type, "shape": array.shape}
        out.say(f"  {value.name:<20} {_dims(value.shape)} {value.type} -> {array.shape} {array.dtype}")
    out.say(
        f"timing:    batch {args.batch} x length {length}: first run {timing.first * 1e3:.2f} ms, "
        f"median {timing.median * 1e3:.2f} ms, min {timing.best * 1e3:.2f} ms "
        f"over {args.repeats} runs"
    )
    out.record(
        file=args.onnx, providers=providers, provider_asked=args.provider, metadata=metadata,
        batch=args.batch, length=length, inputs=inputs, outputs=results, finite=finite,
        seconds={"first": timing.first, "median": timing.median, "min": timing.best,
                 "p90": timing.percentile(90), "repeats": args.repeats},
    )
    if not finite:
        raise CommandError("outputs contain NaN or inf")
    out.say("outputs finite: yes")
    return 0


def _dims(shape):
    return "[" + ", ".join(str(d) for d in shape) + "]"
