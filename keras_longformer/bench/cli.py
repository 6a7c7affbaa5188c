"""Arguments and glue of `keras-longformer bench`: plan, run, write, print."""

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import tempfile

from keras_longformer.bench import memory
from keras_longformer.bench import led_generation
from keras_longformer.bench import model_bench
from keras_longformer.bench import model_report
from keras_longformer.bench import plot
from keras_longformer.bench import report
from keras_longformer.bench import runner
from keras_longformer.bench.paths import PATHS

FULL_LENGTHS = (512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)
QUICK_LENGTHS = (512,)
BACKENDS = ("tensorflow", "jax", "torch")
ONEDNN = ("default", "on", "off")
MALLOC = ("default", "reuse")
VERSIONS = ("tensorflow", "keras", "jax", "torch", "transformers", "onnxruntime", "onnxruntime-gpu")


def add_arguments(parser):
    parser.add_argument(
        "--quick", action="store_true",
        help="smoke test in about a minute: 512 tokens, 2 repeats, one process per runtime",
    )
    parser.add_argument(
        "--lengths", default=None,
        help="comma-separated lengths (default 512..65536; peers stop at --peer-max-length)",
    )
    parser.add_argument("--peer-max-length", type=int, default=16384,
                        help="longest length the peers are measured at")
    parser.add_argument(
        "--model", action="store_true",
        help="benchmark a whole model's training step (forward, backward, AdamW) with and without "
        "gradient checkpointing against Hugging Face's LongformerModel: the base configuration "
        "(12 layers, hidden 768, 12 heads, window 256) at 1,024..16,384 tokens; with --quick a "
        "2-layer hidden-128 model at 256 and 512",
    )
    parser.add_argument(
        "--led", action="store_true",
        help="benchmark LED summarization: tokens per second of our generate and of the ONNX pair in "
        "onnxruntime against Hugging Face's LED generate, same weights, one run (LED-base's shape at "
        "1,024 and 4,096 tokens; --quick: a tiny LED)",
    )
    parser.add_argument("--new-tokens", type=int, default=None,
                        help="tokens generated per document with --led (default 64; 8 with --quick)")
    parser.add_argument("--paths", default=None,
                        help="comma-separated subset of the measured paths (default: all)")
    parser.add_argument("--backend", default="tensorflow", help="Keras backend of our layer: "
                        "tensorflow, jax or torch (the peers keep their own)")
    parser.add_argument(
        "--tensorflow-onednn", default="on",
        help="TensorFlow's oneDNN kernels in the TensorFlow workers (TF_ENABLE_ONEDNN_OPTS): "
        "on (the default: every TensorFlow path, ours and Keras MHA, runs its batched matmuls "
        "~6x faster on AVX2 CPUs), off, or default (TensorFlow's own choice: off on CPUs "
        "without AVX-512)",
    )
    parser.add_argument(
        "--malloc", default="default",
        help="glibc malloc in every worker, all paths alike: default (the environment's), or "
        "reuse (MALLOC_MMAP_MAX_=0 and no heap trimming: large tensors reuse freed memory "
        "instead of fresh pages each call; torch on CPU ran 1.5-2x faster)",
    )
    parser.add_argument("--layers", type=int, default=None,
                        help="encoder layers with --model (default 12; 2 with --quick)")
    parser.add_argument("--hidden", type=int, default=None,
                        help="hidden size D (default 768; 128 with --model --quick)")
    parser.add_argument("--heads", type=int, default=None,
                        help="attention heads; divides --hidden (default 12; 2 with --model --quick)")
    parser.add_argument("--window", type=int, default=None,
                        help="one-sided window (default 256; 32 with --model --quick)")
    parser.add_argument("--batch", type=int, default=1, help="sequences per batch (default 1)")
    parser.add_argument("--num-global", type=int, default=2, help="global tokens (the first ones)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per point (5; 2 with --quick)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    parser.add_argument(
        "--rounds", type=int, default=1,
        help="run every point this many times, round after round, and report the median of the "
        "rounds: on a shared machine a slow phase then hits every length, not one (default 1)",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per worker process")
    parser.add_argument("--max-point-seconds", type=float, default=900.0,
                        help="skip a point whose warm-up and timed calls are predicted (from the "
                        "same path at a shorter length) to take longer than this")
    parser.add_argument("--output-dir", default="bench-results",
                        help="directory for bench.json, bench.md (a Markdown summary table), "
                        "time_vs_length.png, memory_vs_length.png")


def _positive(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`--{name}` must be an int >= {minimum}. Received: --{name}={value!r}")
    return value


def parse_options(args):
    """Checks every option before any work; returns a plain dict."""
    if args.lengths is None:
        lengths = None if getattr(args, "model", False) else list(QUICK_LENGTHS if args.quick else FULL_LENGTHS)
    else:
        try:
            lengths = [int(n) for n in args.lengths.split(",")]
        except ValueError:
            lengths = None
        if not lengths or any(n < 1 for n in lengths):
            raise ValueError(f"`--lengths` must be comma-separated ints >= 1. Received: --lengths={args.lengths!r}")
    if getattr(args, "model", False):
        shared = model_bench.parse_model_options(args, lengths, _positive)
        lengths = shared["lengths"]
    else:
        shared = _layer_options(args)
    if args.backend not in BACKENDS:
        raise ValueError(f"`--backend` must be one of {BACKENDS}. Received: --backend={args.backend!r}")
    if args.tensorflow_onednn not in ONEDNN:
        raise ValueError(
            f"`--tensorflow-onednn` must be one of {ONEDNN}. "
            f"Received: --tensorflow-onednn={args.tensorflow_onednn!r}"
        )
    if args.malloc not in MALLOC:
        raise ValueError(f"`--malloc` must be one of {MALLOC}. Received: --malloc={args.malloc!r}")
    for name in ("batch", "warmup", "peer_max_length", "rounds"):
        _positive(name.replace("_", "-"), getattr(args, name))
    _positive("num-global", args.num_global, 0)
    if args.num_global > min(lengths):
        raise ValueError(
            f"`--num-global` must not exceed the shortest length {min(lengths)}. "
            f"Received: --num-global={args.num_global}"
        )
    repeats = args.repeats if args.repeats is not None else (
        2 if args.quick or getattr(args, "model", False) else 5
    )
    _positive("repeats", repeats)
    if not args.max_point_seconds > 0:
        raise ValueError(
            "`--max-point-seconds` must be > 0. "
            f"Received: --max-point-seconds={args.max_point_seconds!r}"
        )
    if not args.timeout > 0:
        raise ValueError(f"`--timeout` must be > 0 seconds. Received: --timeout={args.timeout!r}")
    output_dir = os.path.abspath(args.output_dir)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ValueError(f"`--output-dir` is a file. Received: --output-dir={args.output_dir!r}")
    return dict(shared, lengths=sorted(set(lengths)), model=getattr(args, "model", False),
                backend=args.backend,
                quick=args.quick, repeats=repeats, warmup=args.warmup, rounds=args.rounds,
                timeout=args.timeout,
                peer_max_length=args.peer_max_length, output_dir=output_dir,
                onednn=args.tensorflow_onednn, malloc=args.malloc,
                max_point_seconds=args.max_point_seconds)


def _layer_options(args):
    """`config` and `paths` of the attention-layer benchmark."""
    config = dict(hidden=768 if args.hidden is None else args.hidden,
                  heads=12 if args.heads is None else args.heads,
                  window=256 if args.window is None else args.window,
                  batch=args.batch, num_global=args.num_global)
    for name in ("hidden", "heads", "window"):
        _positive(name, config[name])
    if config["hidden"] % config["heads"]:
        raise ValueError(
            f"`--hidden` must be a multiple of `--heads`. "
            f"Received: --hidden={config['hidden']}, --heads={config['heads']}"
        )
    known = [path.name for path in PATHS]
    paths = ",".join(known) if args.paths is None else args.paths
    names = [name.strip() for name in paths.split(",") if name.strip()]
    if not names or any(name not in known for name in names):
        raise ValueError(f"`--paths` must name paths among {known}. Received: --paths={args.paths!r}")
    return dict(config=config, paths=names)


def _machine():
    versions = {}
    for name in VERSIONS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return dict(platform=platform.platform(), processor=_cpu_model(), cpu_count=os.cpu_count(),
                load_average_start=list(os.getloadavg()), versions=versions,
                memory_available_gib=(memory.available_bytes() or 0) / 1024**3)


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def run(options, progress=True):
    """Runs the benchmark; writes and returns the report (a dict)."""
    from tqdm.auto import tqdm

    config = options["config"]
    points, skipped = runner.plan(config, options["lengths"], options["paths"],
                                  options["peer_max_length"])
    os.makedirs(options["output_dir"], exist_ok=True)
    machine = _machine()
    environment = runner.worker_environment(
        options["backend"], options["onednn"], options["malloc"]
    )
    machine["tf_enable_onednn_opts"] = environment.get(
        "TF_ENABLE_ONEDNN_OPTS", "unset (TensorFlow's default)"
    )
    machine["malloc"] = {name: environment[name] for name in runner.MALLOC_REUSE if name in environment}
    started = datetime.datetime.now(datetime.timezone.utc)
    wants_onnx = any(point["path"] == "ours_onnxruntime_forward" for point in points)
    with tempfile.TemporaryDirectory(prefix="keras_longformer_bench_onnx_") as scratch:
        onnx_path = os.path.join(scratch, "longformer_self_attention.onnx") if wants_onnx else None
        setup = dict(repeats=options["repeats"], warmup=1 if options["quick"] else 2, quick=options["quick"],
                     # export_onnx verifies at one length: past a few
                     # blocks (not a block multiple), never the longest.
                     verify_length=min(min(options["lengths"]), 4 * config["window"] + 5))
        rounds = options["rounds"]
        with tqdm(total=len(points) * rounds, desc="bench", unit="point",
                  disable=not progress) as bar:
            rows_of_rounds, setup_results = [], {}
            for index in range(rounds):
                rows, results = runner.run_points(
                    points, config, backend=options["backend"], isolated=not options["quick"],
                    repeats=options["repeats"], warmup=options["warmup"],
                    setup=setup if index == 0 else None, onnx_path=onnx_path,
                    timeout=options["timeout"], progress=bar, onednn=options["onednn"],
                    malloc=options["malloc"],
                    max_point_seconds=options["max_point_seconds"],
                )
                rows_of_rounds.append(rows)
                setup_results.update(results)
            rows = report.merge_rounds(rows_of_rounds)
    export = setup_results.get("export", {})
    for row in rows:
        if row["path"] == "ours_onnxruntime_forward" and "error" in export and "skipped" in row:
            row["skipped"] = f"export failed: {export['error']}"
    rates_result = setup_results.get("matmul_rates", {})
    measured = rates_result.get("rates", {})
    rates = {dtype: rate["flops_per_second"] for dtype, rate in measured.items()}
    cpu_rates = {dtype: rate["flops_per_cpu_second"] for dtype, rate in measured.items()}
    runtime_result = setup_results.get("onnxruntime_matmul_rate", {})
    runtime_rates = {}
    if "rate" in runtime_result:
        runtime_rates["onnxruntime"] = runtime_result["rate"]["flops_per_second"]
    rows = report.annotate(rows + skipped, config, rates, cpu_rates, runtime_rates)
    machine["load_average_end"] = list(os.getloadavg())
    result = dict(
        date=started.isoformat(timespec="seconds"),
        command="keras-longformer bench " + options_command(options),
        config=dict(config, head_dim=config["hidden"] // config["heads"], backend=options["backend"]),
        quick=options["quick"], repeats=options["repeats"], warmup=options["warmup"],
        rounds=options["rounds"], machine=machine, matmul_rates=rates_result.get("rates"),
        matmul_rates_error=rates_result.get("error"),
        onnxruntime_matmul_rate=runtime_result.get("rate"),
        onnxruntime_matmul_rate_error=runtime_result.get("error"),
        export=export or None, rows=rows,
    )
    json_path = os.path.join(options["output_dir"], "bench.json")
    with open(json_path, "w") as handle:
        json.dump(result, handle, indent=1)
    markdown_path = os.path.join(options["output_dir"], "bench.md")
    with open(markdown_path, "w") as handle:
        handle.write(f"{result['date']}, `{result['command']}`\n\n{report.format_markdown(rows)}\n")
    subtitle = f" (hidden {config['hidden']}, window {config['window']}, {machine['cpu_count']} CPUs)"
    result["files"] = [
        json_path,
        markdown_path,
        plot.plot_time(rows, config, rates, os.path.join(options["output_dir"], "time_vs_length.png"), subtitle),
        plot.plot_memory(rows, os.path.join(options["output_dir"], "memory_vs_length.png"), subtitle),
    ]
    return result


def options_command(options):
    """The options as command-line flags (the command that reproduces a run)."""
    config = options["config"]
    parts = ["--quick"] if options["quick"] else []
    if options["paths"] != [path.name for path in PATHS]:
        parts.append(f"--paths {','.join(options['paths'])}")
    parts += [f"--lengths {','.join(str(n) for n in options['lengths'])}",
              f"--backend {options['backend']}", f"--tensorflow-onednn {options['onednn']}",
              f"--hidden {config['hidden']}",
              f"--heads {config['heads']}", f"--window {config['window']}",
              f"--batch {config['batch']}", f"--num-global {config['num_global']}",
              f"--repeats {options['repeats']}"]
    if options["malloc"] != "default":
        parts.append(f"--malloc {options['malloc']}")
    if options["rounds"] > 1:
        parts.append(f"--rounds {options['rounds']}")
    return " ".join(parts)


def run_from_arguments(args):
    reporter = getattr(args, "reporter", None)
    chatty = reporter.chatty if reporter is not None else True
    if getattr(args, "led", False):
        config, repeats, output_dir = led_generation.parse_led_options(args, _positive)
        result = led_generation.run_led(config, repeats, output_dir, progress=print if chatty else _silent)
        print(led_generation.format_markdown(result["rows"]))
        print("wrote " + ", ".join(result["files"]))
        return dict(json=result["files"][0], markdown=result["files"][1], rows=result["rows"])
    options = parse_options(args)
    if options["model"]:
        machine = _machine()
        machine["malloc"] = options["malloc"]
        machine["tf_enable_onednn_opts"] = options["onednn"]
        result = model_bench.run_model(options, machine, progress=chatty)
        print(model_report.format_table(result["rows"]))
        print("wrote " + ", ".join(result["files"]))
        return dict(json=result["files"][0], markdown=result["files"][1], plots=result["files"][2:],
                    rows=result["rows"], checkpointing=result["checkpointing"])
    result = run(options, progress=chatty)
    print(report.format_table(result["rows"]))
    print("wrote " + ", ".join(result["files"]))
    return dict(json=result["files"][0], markdown=result["files"][1], plots=result["files"][2:],
                matmul_rates=result["matmul_rates"], rows=result["rows"])


def _silent(*_):
    pass


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = argparse.ArgumentParser(prog="python -m keras_longformer.bench",
                                     description="Benchmark of Longformer attention against its peers.")
    add_arguments(parser)
    run_from_arguments(parser.parse_args(argv))
    return 0
