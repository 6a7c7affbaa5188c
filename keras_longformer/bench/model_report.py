"""Rows of the model benchmark into figures, a table and plots.

Every timed row gets its tokens per second, useful FLOPs
(`model_paths.model_useful_flops`), the fraction of the machine's limit
(useful FLOPs over the float32 matmul rate measured in the same run, over
the measured median), and its time and peak memory over ours without
checkpointing at the same length. A point the machine could not hold keeps
its reason, and with `estimated_peak_rss_mib` when its peak could be
extrapolated (memory is linear in the length) from the same path's shorter
lengths.
"""

from keras_longformer.bench.model_paths import MODEL_PATHS
from keras_longformer.bench.model_paths import get_model_path
from keras_longformer.bench.model_paths import model_useful_flops

ORDER = {path.name: index for index, path in enumerate(MODEL_PATHS)}
REFERENCE = "ours_train"


def extrapolated_peak_mib(rows, path_name, length):
    """Peak memory of `path_name` at `length` on the line through its two
    longest measured lengths below it, or `None` with fewer than two."""
    measured = sorted(
        (row["length"], row["peak_rss_mib"]) for row in rows
        if row["path"] == path_name and row["length"] < length and "peak_rss_mib" in row
    )
    if len(measured) < 2:
        return None
    (t0, m0), (t1, m1) = measured[-2:]
    return m1 + (m1 - m0) / (t1 - t0) * (length - t1)


def annotate(rows, config, rate):
    """Adds throughput, FLOPs, the limit and ratios to the rows, in place."""
    timed = {(row["path"], row["length"]): row for row in rows if "seconds" in row}
    for row in rows:
        # A step the watchdog stopped needed more than the limit: no estimate.
        if "skipped" in row and "estimated_peak_rss_mib" not in row and not row.get("over_memory"):
            estimate = extrapolated_peak_mib(rows, row["path"], row["length"])
            if estimate is not None:
                row["estimated_peak_rss_mib"] = estimate
    for row in timed.values():
        flops = model_useful_flops(config, row["length"])
        row["tokens_per_second"] = config["batch"] * row["length"] / row["seconds"]
        row["useful_gflop"] = flops / 1e9
        if rate:
            row["limit_seconds"] = flops / rate
            row["fraction_of_limit"] = row["limit_seconds"] / row["seconds"]
    for row in rows:
        reference = timed.get((REFERENCE, row["length"]))
        if reference is None or row["path"] == REFERENCE:
            continue
        if "seconds" in row:
            row["time_vs_ours"] = row["seconds"] / reference["seconds"]
            row["memory_vs_ours"] = row["peak_rss_mib"] / reference["peak_rss_mib"]
    rows.sort(key=lambda row: (row["length"], ORDER.get(row["path"], len(ORDER))))
    return rows


def checkpointing_effect(rows, family="ours"):
    """Per length, what checkpointing does to `family`'s training step:
    `{length: {"memory_cut", "time_cost", "measured"}}`; `measured` is
    false where the step without checkpointing did not fit and its peak
    is the extrapolated one."""
    plain, checkpointed = f"{family}_train", f"{family}_checkpointed_train"
    by_point = {(row["path"], row["length"]): row for row in rows}
    effect = {}
    for (name, length), row in by_point.items():
        other = by_point.get((plain, length))
        if name != checkpointed or "peak_rss_mib" not in row or other is None:
            continue
        plain_peak = other.get("peak_rss_mib", other.get("estimated_peak_rss_mib"))
        if plain_peak is None:
            continue
        effect[length] = dict(
            memory_cut=plain_peak / row["peak_rss_mib"],
            time_cost=row["seconds"] / other["seconds"] if "seconds" in other else None,
            measured="peak_rss_mib" in other,
        )
    return effect


def format_table(rows):
    header = (
        f"{'length':>7}  {'path':<28} {'median s':>9} {'tokens/s':>9} {'% limit':>8} "
        f"{'x ours':>7} {'peak MiB':>9}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        start = f"{row['length']:>7}  {row['path']:<28} "
        if "skipped" in row:
            estimate = row.get("estimated_peak_rss_mib")
            note = f" (about {estimate:,.0f} MiB)" if estimate else ""
            lines.append(start + f"skipped: {row['skipped']}{note}")
            continue
        fraction, ratio = row.get("fraction_of_limit"), row.get("time_vs_ours")
        lines.append(
            start + f"{row['seconds']:>9.3f} {row['tokens_per_second']:>9.0f} "
            + (f"{fraction:>8.0%} " if fraction is not None else f"{'':>8} ")
            + (f"{ratio:>6.2f}x " if ratio is not None else f"{'':>7} ")
            + f"{row['peak_rss_mib']:>9,.0f}"
        )
    return "\n".join(lines)


def _cell(row):
    if row is None:
        return ""
    if "skipped" in row:
        if row.get("over_memory"):
            return f"out of memory (stopped at {row['stopped_rss_mib'] / 1024:.1f} GiB)"
        estimate = row.get("estimated_peak_rss_mib")
        return f"skipped (needs about {estimate / 1024:.1f} GiB)" if estimate else "skipped"
    cell = f"{row['seconds']:.3g} s, {row['peak_rss_mib'] / 1024:.1f} GiB"
    if row.get("time_vs_ours") is not None:
        return cell + f" ({row['time_vs_ours']:.2f}x)"
    if row.get("fraction_of_limit") is not None:
        return cell + f" ({row['tokens_per_second']:,.0f} tok/s, {row['fraction_of_limit']:.0%})"
    return cell


def format_markdown(rows):
    """One Markdown row per length: seconds and peak memory per path (ours:
    tokens/s and % of the limit; the others: time over ours)."""
    by_point = {(row["path"], row["length"]): row for row in rows}
    paths = [path for path in MODEL_PATHS if any(key[0] == path.name for key in by_point)]
    header = ["tokens", *(path.label for path in paths)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    for length in sorted({row["length"] for row in rows}):
        cells = [f"{length:,}"] + [_cell(by_point.get((path.name, length))) for path in paths]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows, key, ylabel, title, output_path):
    """One log-log line per path of `key` against the length."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 6), layout="constrained")
    axes = figure.subplots()
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    axes.set_xlabel("sequence length (tokens)")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    for path in MODEL_PATHS:
        points = sorted((row["length"], row[key]) for row in rows
                        if row["path"] == path.name and row.get(key))
        if points:
            lengths, values = zip(*points)
            style = "--" if path.checkpointing else "-"
            color = "C0" if path.is_ours else "C1"
            axes.plot(lengths, values, style, color=color, marker="o", markersize=3,
                      label=get_model_path(path.name).label)
    axes.legend(fontsize=8)
    figure.savefig(output_path, dpi=110)
    return output_path
