"""`keras-longformer serve-bench`: the command line of `benchmark_serving`
(export/serve_bench.py), wired in keras_longformer/cli/main.py."""

import os

from keras_longformer.export.serve_bench import PROVIDERS
from keras_longformer.export.serve_bench import benchmark_serving
from keras_longformer.export.serve_bench import format_table
from keras_longformer.export.serve_bench import report_dict
from keras_longformer.export.serve_bench import write_json

DESCRIPTION = (
    "Serving latency (p50/p90/p99) and tokens per second of one or more ONNX files in "
    "onnxruntime over a grid of batch sizes and lengths; several files (float32, float16, "
    "int8 exports of one model) are reported side by side."
)


def _comma_ints(text):
    import argparse

    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints such as 1,8, got {text!r}") from None
    if not values or any(value < 1 for value in values):
        raise argparse.ArgumentTypeError(f"expected ints >= 1, got {text!r}")
    return values


def add_arguments(parser):
    parser.add_argument("onnx", nargs="+", help="one or more .onnx files")
    parser.add_argument(
        "--batch-sizes", type=_comma_ints, default=[1, 8], help="comma-separated (default 1,8)"
    )
    parser.add_argument(
        "--lengths", type=_comma_ints, default=[512, 4096],
        help="comma-separated sequence lengths (default 512,4096)",
    )
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per point (default 10)")
    parser.add_argument(
        "--provider", choices=PROVIDERS, default="auto",
        help="execution provider (auto: CUDA when it can be created, else CPU)",
    )
    parser.add_argument("--json", default=None, metavar="OUT", help="also write the results as JSON")


def run_from_arguments(args):
    if args.json is not None:
        directory = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"--json: output directory does not exist: {directory}")
        if os.path.isdir(args.json):
            raise IsADirectoryError(f"--json: {args.json} is a directory")
    rows = benchmark_serving(
        args.onnx,
        batch_sizes=args.batch_sizes,
        lengths=args.lengths,
        repeats=args.repeats,
        provider=args.provider,
        progress=args.reporter.wants_progress,
    )
    print(f"{args.repeats} timed runs per point after one warm-up; tokens/s at p50")
    print(format_table(rows))
    if args.json is not None:
        print(f"wrote {write_json(report_dict(rows, provider_requested=args.provider), args.json)}")
    return {"rows": [row.as_dict() for row in rows]}  # the command's --json report, if asked

