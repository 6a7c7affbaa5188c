"""Plans the measurement points, runs them in worker processes, collects rows.

Every point runs in a fresh `keras_longformer.bench.worker` process, so its
peak resident memory is its own; `--quick` shares one process per runtime
(TensorFlow, torch, onnxruntime) instead, to finish in about a minute.
Before a process starts, each of its points' estimated memory is checked
against what the machine has available now: a point that would not fit is
a skipped row with the figures, never a crash. A worker that dies (killed
for memory, timed out) turns its unfinished points into skipped rows.
"""

import json
import os
import subprocess
import sys
import tempfile
import threading

from keras_longformer.bench import memory
from keras_longformer.bench.paths import cannot_run
from keras_longformer.bench.paths import estimate_peak_bytes
from keras_longformer.bench.paths import get_path
from keras_longformer.bench.worker import PREFIX

GIB = 1024**3
# Share of the available memory a point may be estimated to use.
MEMORY_HEADROOM = 0.8


def worker_backend(path, backend):
    """The `KERAS_BACKEND` a path's process imports Keras with: ours on the
    chosen backend, Keras MHA on TensorFlow, Hugging Face with torch (which
    it loads anyway), onnxruntime with the light numpy backend."""
    if path.runtime == "onnxruntime":
        return "numpy"
    if path.family == "hf_torch":
        return "torch"
    if path.family == "keras_mha":
        return "tensorflow"
    return backend


def plan(config, lengths, path_names, peer_max_length):
    """`(points, skipped_rows)`: what to run, and what cannot run at all."""
    points, skipped = [], []
    for length in lengths:
        for name in path_names:
            path = get_path(name)
            if not path.is_ours and length > peer_max_length:
                continue
            reason = cannot_run(path, config, length)
            if reason:
                skipped.append(dict(path=name, length=length, skipped=reason))
            else:
                points.append(dict(path=name, length=length))
    return points, skipped


def group(points, backend, isolated):
    """Points per process: one each, or (not isolated) one process for our
    layer's Keras backend and one TensorFlow process for everything else
    (it also holds the ONNX export; torch and onnxruntime load beside it)."""
    if isolated:
        return [
            dict(backend=worker_backend(get_path(point["path"]), backend), points=[point])
            for point in points
        ]
    groups = {}
    for point in points:
        path = get_path(point["path"])
        key = backend if path.is_ours and path.runtime == "keras" else "tensorflow"
        groups.setdefault(key, []).append(point)
    return [dict(backend=key, points=members) for key, members in groups.items()]


def memory_check(point, config):
    """A skip reason when the point's estimated peak does not fit now."""
    estimate = estimate_peak_bytes(get_path(point["path"]), config, point["length"])
    available = memory.available_bytes()
    if available is not None and estimate > MEMORY_HEADROOM * available:
        return (
            f"estimated peak memory {estimate / GIB:.1f} GiB exceeds "
            f"{MEMORY_HEADROOM:.0%} of the {available / GIB:.1f} GiB available"
        )
    return None


# glibc's malloc serves every block over 32 MiB with a fresh mmap and unmaps
# it when freed, so each call pays a page fault per 4 KiB of its large
# tensors (torch's CPU allocator is plain malloc). With mmap off and the heap
# never trimmed, freed blocks are reused: the same process keeps its peak.
MALLOC_REUSE = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**40)}


def worker_environment(backend, onednn="default", malloc="default"):
    """The worker's environment: `KERAS_BACKEND`, TensorFlow's oneDNN
    switch when asked (`on`/`off`; `default` leaves TensorFlow's choice,
    which is off on CPUs without AVX-512), and glibc's malloc settings
    (`reuse`: `MALLOC_REUSE`; `default` leaves the environment's)."""
    env = dict(os.environ, KERAS_BACKEND=backend)
    if onednn != "default":
        env["TF_ENABLE_ONEDNN_OPTS"] = "1" if onednn == "on" else "0"
    if malloc == "reuse":
        env.update(MALLOC_REUSE)
    return env


def time_check(point, rows, calls, max_point_seconds, power=None):
    """A skip reason when the point's calls would take longer than
    `max_point_seconds`, predicted from the same path's longest shorter
    length (linear in the length; quadratic for the dense Keras MHA)."""
    if max_point_seconds is None:
        return None
    shorter = [
        row for row in rows
        if row["path"] == point["path"] and row["length"] < point["length"] and "seconds" in row
    ]
    if not shorter:
        return None
    previous = max(shorter, key=lambda row: row["length"])
    if power is None:
        power = 2 if get_path(point["path"]).family == "keras_mha" else 1
    per_call = previous["seconds"] * (point["length"] / previous["length"]) ** power
    if per_call * calls <= max_point_seconds:
        return None
    return (
        f"estimated {per_call:.0f} s per call from {previous['length']} tokens: "
        f"{calls} calls exceed --max-point-seconds {max_point_seconds:g}"
    )


def run_process(spec, backend, timeout, on_result, onednn="default", malloc="default",
                module="keras_longformer.bench.worker"):
    """Runs one worker (`python -m module SPEC.json`); calls `on_result` for
    every result line.

    Returns `None` when the worker exited cleanly, else why it did not.
    """
    env = worker_environment(backend, onednn, malloc)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with tempfile.TemporaryDirectory(prefix="keras_longformer_bench_") as scratch:
        spec_path = os.path.join(scratch, "spec.json")
        with open(spec_path, "w") as handle:
            json.dump(spec, handle)
        stderr_path = os.path.join(scratch, "stderr.txt")
        with open(stderr_path, "w") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", module, spec_path],
                stdout=subprocess.PIPE, stderr=stderr, text=True, env=env,
            )
            timed_out = threading.Event()

            def kill():
                timed_out.set()
                process.kill()

            timer = threading.Timer(timeout, kill)
            timer.start()
            try:
                for line in process.stdout:
                    if line.startswith(PREFIX):
                        on_result(json.loads(line[len(PREFIX):]))
                returncode = process.wait()
            finally:
                timer.cancel()
        if timed_out.is_set():
            return f"worker timed out after {timeout:g} s"
        if returncode == 0:
            return None
        if returncode < 0:
            return (
                f"worker killed by signal {-returncode} "
                "(out of memory, or stopped from outside)"
            )
        with open(stderr_path) as handle:
            lines = [line.strip() for line in handle if line.strip()]
        return f"worker exited with code {returncode}: {lines[-1] if lines else ''}"


def run_points(points, config, *, backend, isolated, repeats, warmup, setup,
               onnx_path, timeout, progress, onednn="default", malloc="default",
               max_point_seconds=None):
    """Runs `setup` (matmul rates, ONNX export) then every point.

    Returns `(rows, setup_results)`; `setup_results` maps `matmul_rates`
    and `export` to the setup worker's results.
    """
    rows, setup_results = [], {}

    def on_result(result):
        if result["kind"] == "point":
            rows.append(result["row"])
            progress.update(1)
            progress.set_postfix_str(f"{result['row']['path']} {result['row']['length']}")
        else:
            setup_results[result["kind"]] = result

    base = dict(config=config, repeats=repeats, warmup=warmup, isolated=isolated,
                onnx_path=onnx_path)
    groups = group(points, backend, isolated)
    tensorflow_group = None
    if not isolated:
        # The setup (and the ONNX file the onnxruntime points read) comes first.
        groups.sort(key=lambda g: g["backend"] != "tensorflow")
        if groups and groups[0]["backend"] == "tensorflow":
            tensorflow_group = 0
    if tensorflow_group is None and setup:
        progress.set_postfix_str("matmul rates, ONNX export")
        failure = run_process(dict(base, setup=setup, points=[]), "tensorflow", timeout,
                              on_result, onednn, malloc)
        if failure:
            setup_results.setdefault("matmul_rates", dict(error=failure))
    for index, process in enumerate(groups):
        runnable = []
        for point in process["points"]:
            reason = memory_check(point, config) or time_check(
                point, rows, repeats + warmup, max_point_seconds
            )
            if reason:
                rows.append(dict(point, skipped=reason))
                progress.update(1)
            else:
                runnable.append(point)
        with_setup = setup if index == tensorflow_group else None
        if not runnable and not with_setup:
            continue
        spec = dict(base, setup=with_setup, points=runnable)
        failure = run_process(spec, process["backend"], timeout, on_result, onednn, malloc)
        done = {(row["path"], row["length"]) for row in rows}
        for point in runnable:
            if (point["path"], point["length"]) not in done:
                rows.append(dict(point, skipped=failure or "worker returned no result"))
                progress.update(1)
    return rows, setup_results
