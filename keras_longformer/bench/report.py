"""Rows into figures: useful FLOPs, fraction of the limit, ratios, a table.

The limit of a row is its useful FLOPs (forward, or 3x for forward +
backward) over the matmul rate measured in the path's dtype on this
machine; `fraction_of_limit` is that limit over the measured median, so 1.0
would be a layer running entirely at matmul speed.
"""

import statistics

from keras_longformer.bench.flops import next_token_flops
from keras_longformer.bench.flops import training_flops
from keras_longformer.bench.flops import useful_flops
from keras_longformer.bench.paths import PATHS
from keras_longformer.bench.paths import get_path

ORDER = {path.name: index for index, path in enumerate(PATHS)}


def row_flops(path, config, length):
    """Useful FLOPs of one step of `path` (Keras MHA has no global tokens)."""
    if path.mode == "generate":
        from keras_longformer.bench.generation import VOCABULARY

        return next_token_flops(
            hidden=config["hidden"], window=config["window"], vocabulary=VOCABULARY,
            batch=config["batch"],
        )
    forward = useful_flops(
        length=length,
        hidden=config["hidden"],
        heads=config["heads"],
        head_dim=config["hidden"] // config["heads"],
        window=config["window"],
        num_global=0 if path.family == "keras_mha" else config["num_global"],
        batch=config["batch"],
    )
    return forward if path.mode == "forward" else training_flops(forward)


def reference_name(path):
    """The row a path is compared with: ours in float32, same mode."""
    return f"ours_float32_{path.mode}"


def annotate(rows, config, rates, cpu_rates=None, runtime_rates=None):
    """Adds useful FLOPs, the limit and ratios to every timed row, in place.

    Args:
        rows: result rows (`path`, `length`, `seconds` or `skipped`).
        config: the benchmark configuration.
        rates: `{dtype: flops_per_second}`, possibly empty.
        cpu_rates: `{dtype: flops_per_cpu_second}`, possibly empty.
        runtime_rates: `{runtime: flops_per_second}` of a runtime's own
            matmuls (`onnxruntime`), possibly empty: its rows also get
            `fraction_of_runtime_limit`, their limit at that rate.
    """
    cpu_rates = cpu_rates or {}
    runtime_rates = runtime_rates or {}
    timed = {(row["path"], row["length"]): row for row in rows if "seconds" in row}
    for row in timed.values():
        path = get_path(row["path"])
        flops = row_flops(path, config, row["length"])
        row["useful_gflop"] = flops / 1e9
        rate = rates.get(path.rate_dtype)
        if rate:
            row["limit_seconds"] = flops / rate
            row["fraction_of_limit"] = row["limit_seconds"] / row["seconds"]
        runtime_rate = runtime_rates.get(path.runtime)
        if runtime_rate:
            row["fraction_of_runtime_limit"] = flops / runtime_rate / row["seconds"]
        cpu_rate = cpu_rates.get(path.rate_dtype)
        if cpu_rate and row.get("cpu_seconds"):
            # The same figure in CPU time (all threads): steadier under other
            # load, but runtimes whose idle threads spin count that spin.
            row["fraction_of_limit_cpu"] = flops / cpu_rate / row["cpu_seconds"]
        if path.mode == "generate":
            row["tokens_per_second"] = config["batch"] / row["seconds"]
        reference = timed.get((reference_name(path), row["length"]))
        if reference is not None and reference is not row:
            row["time_vs_ours"] = row["seconds"] / reference["seconds"]
    rows.sort(key=lambda row: (row["length"], ORDER.get(row["path"], len(ORDER))))
    return rows


def limit_seconds(config, length, mode, rate, num_global=None):
    """The limit line of the plots: useful FLOPs of ours over `rate`."""
    path = get_path(f"ours_float32_{mode}")
    if num_global is not None:
        config = dict(config, num_global=num_global)
    return row_flops(path, config, length) / rate


def merge_rounds(rows_of_rounds):
    """One row per point from the rows of every round.

    A point timed in several rounds gets the median of the rounds' medians
    as `seconds` (and of their CPU times), each round's median in
    `round_seconds`, every timed call in `times`, and the largest memory of
    any round. A point skipped in every round keeps its first reason.
    """
    if len(rows_of_rounds) == 1:
        return rows_of_rounds[0]
    by_point = {}
    for rows in rows_of_rounds:
        for row in rows:
            by_point.setdefault((row["path"], row["length"]), []).append(row)
    merged = []
    for rounds in by_point.values():
        timed = [row for row in rounds if "seconds" in row]
        if not timed:
            merged.append(rounds[0])
            continue
        row = dict(timed[0])
        row["round_seconds"] = [other["seconds"] for other in timed]
        row["seconds"] = statistics.median(row["round_seconds"])
        row["times"] = [time for other in timed for time in other.get("times", [])]
        cpu = [other["cpu_seconds"] for other in timed if other.get("cpu_seconds") is not None]
        if cpu:
            row["cpu_seconds"] = statistics.median(cpu)
        for key in ("peak_rss_mib", "added_rss_mib"):
            if all(key in other for other in timed):
                row[key] = max(other[key] for other in timed)
        if len(timed) < len(rounds):
            row["skipped_rounds"] = [other["skipped"] for other in rounds if "skipped" in other]
        merged.append(row)
    return merged


def format_table(rows):
    header = (
        f"{'length':>7}  {'path':<26} {'median s':>9} {'% limit':>8} "
        f"{'x ours':>7} {'% lim cpu':>9} {'peak MiB':>9} {'% own lim':>9}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        start = f"{row['length']:>7}  {row['path']:<26} "
        if "skipped" in row:
            lines.append(start + f"skipped: {row['skipped']}")
            continue
        fraction = row.get("fraction_of_limit")
        cpu_fraction = row.get("fraction_of_limit_cpu")
        ratio = row.get("time_vs_ours")
        lines.append(
            start
            + f"{row['seconds']:>9.4f} "
            + (f"{fraction:>8.0%} " if fraction is not None else f"{'':>8} ")
            + (f"{ratio:>6.2f}x " if ratio is not None else f"{'':>7} ")
            + (f"{cpu_fraction:>9.0%} " if cpu_fraction is not None else f"{'':>9} ")
            + f"{row['added_rss_mib']:>9.0f}"
            + (f" {own:>9.0%}" if (own := row.get("fraction_of_runtime_limit")) is not None else "")
        )
    return "\n".join(lines)


# The columns of the summary table: (path, heading). Ours shows its time and
# fraction of the limit; the others their time and how many times ours.
SUMMARY_COLUMNS = (
    ("ours_float32_forward", "ours fwd"),
    ("ours_float32_train", "ours fwd+bwd"),
    ("ours_bfloat16_forward", "ours bf16 fwd"),
    ("ours_onnxruntime_forward", "ours in onnxruntime"),
    ("keras_mha_forward", "Keras MHA fwd"),
    ("hf_torch_forward", "Hugging Face fwd"),
    ("hf_torch_train", "Hugging Face fwd+bwd"),
)


def format_markdown(rows):
    """One Markdown row per length: seconds (% of the limit for ours, times
    ours for the others) per path, and the peak memory ours added."""
    by_point = {(row["path"], row["length"]): row for row in rows}
    columns = [
        (path, heading) for path, heading in SUMMARY_COLUMNS
        if any(key[0] == path for key in by_point)
    ]
    header = ["tokens", *(heading for _, heading in columns), "ours fwd memory"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    for length in sorted({row["length"] for row in rows}):
        cells = [f"{length:,}"]
        for path, _ in columns:
            cells.append(_summary_cell(by_point.get((path, length))))
        ours = by_point.get(("ours_float32_forward", length), {})
        cells.append(f"{ours['added_rss_mib']:,.0f} MiB" if "added_rss_mib" in ours else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _summary_cell(row):
    if row is None:
        return ""
    if "skipped" in row:
        return "skipped"
    cell = f"{row['seconds']:.3g} s"
    if row.get("time_vs_ours") is not None:
        return cell + f" ({row['time_vs_ours']:.2f}x)"
    if row.get("fraction_of_limit") is not None:
        return cell + f" ({row['fraction_of_limit']:.0%})"
    return cell
