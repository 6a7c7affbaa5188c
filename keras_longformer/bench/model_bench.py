"""`keras-longformer bench --model`: a whole model's training step against Hugging Face's.

Each point (a path at a length) runs in a fresh process
(`model_worker`), so its peak resident memory is its own. Before a point
starts, its peak is extrapolated from the same path's shorter lengths where
it can be; a point that would not fit in 80% of the memory available is a
skipped row with that estimate, and a point that grows past it while
running is stopped by the worker's watchdog, also a skipped row. One
TensorFlow process first measures the machine's float32 matmul rate, the
limit every row's useful FLOPs are judged against.
"""

import datetime
import json
import os

from keras_longformer.bench import memory
from keras_longformer.bench import model_report
from keras_longformer.bench import runner
from keras_longformer.bench.model_paths import BASE
from keras_longformer.bench.model_paths import FULL_LENGTHS
from keras_longformer.bench.model_paths import MODEL_PATHS
from keras_longformer.bench.model_paths import QUICK_LENGTHS
from keras_longformer.bench.model_paths import SMALL
from keras_longformer.bench.model_paths import cannot_run
from keras_longformer.bench.model_paths import get_model_path

GIB = 1024**3
MODULE = "keras_longformer.bench.model_worker"


def parse_model_options(args, lengths, positive):
    """The model benchmark's options from the shared `bench` arguments."""
    if args.rounds != 1:
        raise ValueError(f"`--rounds` is not supported with `--model`. Received: --rounds={args.rounds}")
    defaults = SMALL if args.quick else BASE
    config = {key: getattr(args, key) if getattr(args, key) is not None else value
              for key, value in defaults.items()}
    config.update(batch=args.batch, num_global=args.num_global)
    for name in ("layers", "hidden", "heads", "window"):
        positive(name, config[name])
    if config["hidden"] % config["heads"]:
        raise ValueError(
            f"`--hidden` must be a multiple of `--heads`. "
            f"Received: --hidden={config['hidden']}, --heads={config['heads']}"
        )
    known = [path.name for path in MODEL_PATHS]
    names = known if args.paths is None else [n.strip() for n in args.paths.split(",") if n.strip()]
    if not names or any(name not in known for name in names):
        raise ValueError(
            f"`--paths` must name paths among {known} with `--model`. Received: --paths={args.paths!r}"
        )
    lengths = lengths or list(QUICK_LENGTHS if args.quick else FULL_LENGTHS)
    return dict(config=config, lengths=sorted(set(lengths)), paths=names)


def plan(config, lengths, path_names, peer_max_length):
    """`(points, skipped_rows)`, shortest lengths first (later points are
    extrapolated from them)."""
    points, skipped = [], []
    for length in lengths:
        for name in path_names:
            path = get_model_path(name)
            if not path.is_ours and length > peer_max_length:
                continue
            reason = cannot_run(path, config, length)
            if reason:
                skipped.append(dict(path=name, length=length, skipped=reason))
            else:
                points.append(dict(path=name, length=length))
    return points, skipped


def memory_check(point, rows, limit_bytes):
    """A skip reason (and the estimate) when the point's peak, extrapolated
    from its path's shorter lengths, exceeds `limit_bytes`."""
    estimate = model_report.extrapolated_peak_mib(rows, point["path"], point["length"])
    if estimate is None or estimate * memory.MIB <= limit_bytes:
        return None
    return dict(
        skipped=f"estimated peak {estimate / 1024:.1f} GiB (linear in the length from its "
        f"shorter lengths) exceeds 80% of the {limit_bytes / 0.8 / GIB:.1f} GiB available",
        estimated_peak_rss_mib=estimate,
    )


def run_model_points(points, options, limit_bytes, progress):
    rows = []
    for point in points:
        skip = memory_check(point, rows, limit_bytes) or runner.time_check(
            point, rows, options["repeats"] + options["warmup"], options["max_point_seconds"],
            power=1,
        )
        if skip:
            rows.append(dict(point, **(skip if isinstance(skip, dict) else dict(skipped=skip))))
            progress.update(1)
            continue
        path = get_model_path(point["path"])
        backend = options["backend"] if path.is_ours else "torch"
        spec = dict(config=options["config"], repeats=options["repeats"], warmup=options["warmup"],
                    memory_limit_bytes=limit_bytes, points=[point])
        results = []
        failure = runner.run_process(spec, backend, options["timeout"], results.append,
                                     options["onednn"], options["malloc"], module=MODULE)
        row = results[-1]["row"] if results else dict(point, skipped=failure or "no result")
        rows.append(row)
        progress.update(1)
        progress.set_postfix_str(f"{point['path']} {point['length']}")
    return rows


def matmul_rate(options):
    """The machine's float32 matmul rate (one TensorFlow process), or `None`."""
    results = {}
    spec = dict(config=options["config"], points=[],
                setup=dict(repeats=3, warmup=1, quick=options["quick"]))
    runner.run_process(spec, "tensorflow", options["timeout"],
                       lambda result: results.setdefault(result["kind"], result),
                       options["onednn"], options["malloc"])
    return results.get("matmul_rates", {}).get("rates", {}).get("float32")


def run_model(options, machine, progress=True):
    """Runs the model benchmark; writes and returns the report (a dict)."""
    from tqdm.auto import tqdm

    config = options["config"]
    points, skipped = plan(config, options["lengths"], options["paths"], options["peer_max_length"])
    os.makedirs(options["output_dir"], exist_ok=True)
    limit_bytes = 0.8 * (memory.available_bytes() or 16 * GIB)
    started = datetime.datetime.now(datetime.timezone.utc)
    rate = matmul_rate(options)
    with tqdm(total=len(points), desc="bench --model", unit="point", disable=not progress) as bar:
        rows = run_model_points(points, options, limit_bytes, bar)
    rows = model_report.annotate(rows + skipped, config, rate and rate["flops_per_second"])
    machine["load_average_end"] = list(os.getloadavg())
    result = dict(
        date=started.isoformat(timespec="seconds"),
        command="keras-longformer bench --model " + model_command(options),
        config=dict(config, head_dim=config["hidden"] // config["heads"],
                    intermediate=4 * config["hidden"], backend=options["backend"]),
        quick=options["quick"], repeats=options["repeats"], warmup=options["warmup"],
        machine=machine, memory_limit_gib=limit_bytes / GIB, matmul_rate=rate,
        checkpointing={family: model_report.checkpointing_effect(rows, family)
                       for family in ("ours", "hf_torch")},
        rows=rows,
    )
    directory = options["output_dir"]
    json_path = os.path.join(directory, "model_bench.json")
    with open(json_path, "w") as handle:
        json.dump(result, handle, indent=1)
    markdown_path = os.path.join(directory, "model_bench.md")
    with open(markdown_path, "w") as handle:
        handle.write(f"{result['date']}, `{result['command']}`\n\n"
                     f"{model_report.format_markdown(rows)}\n")
    subtitle = (f"{config['layers']} layers, hidden {config['hidden']}, window {config['window']}, "
                f"{machine['cpu_count']} CPUs")
    result["files"] = [
        json_path, markdown_path,
        model_report.plot(rows, "seconds", "median seconds per step",
                          f"Training step ({subtitle})",
                          os.path.join(directory, "model_time_vs_length.png")),
        model_report.plot(rows, "peak_rss_mib", "peak resident MiB",
                          f"Peak memory of a training step ({subtitle})",
                          os.path.join(directory, "model_memory_vs_length.png")),
    ]
    return result


def model_command(options):
    """The options as command-line flags (the command that reproduces a run)."""
    config = options["config"]
    parts = ["--quick"] if options["quick"] else []
    if options["paths"] != [path.name for path in MODEL_PATHS]:
        parts.append(f"--paths {','.join(options['paths'])}")
    parts += [f"--lengths {','.join(str(n) for n in options['lengths'])}",
              f"--backend {options['backend']}", f"--tensorflow-onednn {options['onednn']}",
              f"--layers {config['layers']}", f"--hidden {config['hidden']}",
              f"--heads {config['heads']}", f"--window {config['window']}",
              f"--batch {config['batch']}", f"--num-global {config['num_global']}",
              f"--repeats {options['repeats']}", f"--warmup {options['warmup']}"]
    if options["malloc"] != "default":
        parts.append(f"--malloc {options['malloc']}")
    return " ".join(parts)
