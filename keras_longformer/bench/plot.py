"""PNG plots of a benchmark run (matplotlib, no pyplot global state).

- time against length, log-log, one line per path, with the float32
  limit of our layer (useful FLOPs over the measured matmul rate) drawn
  for the forward and the forward + backward step;
- peak resident memory each path added over its process's baseline,
  against length, log-log.
"""

from keras_longformer.bench.paths import PATHS
from keras_longformer.bench.report import limit_seconds

STYLE = {"forward": "-", "train": "--", "generate": "-."}


def _series(rows, key):
    series = {}
    for row in rows:
        if key in row and row[key] is not None and row[key] > 0:
            series.setdefault(row["path"], []).append((row["length"], row[key]))
    return {name: sorted(points) for name, points in series.items()}


def _figure(title, ylabel):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 6), layout="constrained")
    axes = figure.subplots()
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    axes.set_xlabel("sequence length (tokens)")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    return figure, axes


def _plot_paths(axes, series):
    # One color per implementation; forward solid, forward + backward dashed.
    implementations = list(dict.fromkeys(path.name.rsplit("_", 1)[0] for path in PATHS))
    for path in PATHS:
        if path.name not in series:
            continue
        lengths, values = zip(*series[path.name])
        color = f"C{implementations.index(path.name.rsplit('_', 1)[0])}"
        axes.plot(lengths, values, STYLE[path.mode], color=color, marker="o", markersize=3,
                  label=path.label)


def plot_time(rows, config, rates, output_path, subtitle=""):
    figure, axes = _figure(f"Time per step{subtitle}", "median seconds")
    _plot_paths(axes, _series(rows, "seconds"))
    lengths = sorted({row["length"] for row in rows})
    rate = rates.get("float32")
    if rate and lengths:
        for mode, label in (("forward", "fwd"), ("train", "fwd+bwd")):
            limits = [limit_seconds(config, n, mode, rate) for n in lengths]
            axes.plot(lengths, limits, ":", color="black" if mode == "forward" else "gray",
                      linewidth=2, label=f"limit: ours' useful FLOPs / float32 matmul rate ({label})")
    axes.legend(fontsize=8)
    figure.savefig(output_path, dpi=110)
    return output_path


def plot_memory(rows, output_path, subtitle=""):
    figure, axes = _figure(
        f"Peak resident memory added by each path{subtitle}", "MiB over the process baseline"
    )
    _plot_paths(axes, _series(rows, "added_rss_mib"))
    axes.legend(fontsize=8)
    figure.savefig(output_path, dpi=110)
    return output_path
