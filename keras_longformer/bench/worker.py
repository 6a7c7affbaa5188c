"""One benchmark process: `python -m keras_longformer.bench.worker SPEC.json`.

The runner starts one of these per measurement point (or per runtime in
`--quick`) so that each point's peak resident memory is its own. The spec
says what to run; every result is one stdout line `BENCH_RESULT {json}`,
written as soon as it is known, so the runner's progress bar moves and a
worker that dies still leaves the results it finished. A point that fails
is reported as skipped with the error's first line, never raised.
"""

import gc
import json
import os
import statistics
import sys
import time

from keras_longformer.bench import memory
from keras_longformer.bench.paths import get_path

PREFIX = "BENCH_RESULT "


def emit(result):
    print(PREFIX + json.dumps(result), flush=True)


def first_line(error):
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


def build_step(path, config, length, onnx_path):
    """`(call, sync, extra)` for one point; `extra` goes into the row."""
    if path.family == "ours" and path.runtime == "onnxruntime":
        from keras_longformer.bench.peers import onnxruntime_forward

        call, sync, provider = onnxruntime_forward(config, length, onnx_path)
        return call, sync, {"provider": provider}
    if path.mode == "generate":
        import keras

        from keras_longformer.bench.generation import next_token

        call, sync = next_token(config, length)
        return call, sync, {"backend": keras.config.backend()}
    if path.family == "ours":
        import keras

        from keras_longformer.bench.ours import ours

        call, sync = ours(config, length, path.dtype, path.mode)
        return call, sync, {"backend": keras.config.backend()}
    if path.family == "keras_mha":
        from keras_longformer.bench.peers import keras_mha

        call, sync = keras_mha(config, length, path.mode)
        return call, sync, {"backend": "tensorflow"}
    from keras_longformer.bench.peers import hf_torch

    call, sync = hf_torch(config, length, path.mode)
    return call, sync, {}


def run_point(spec, point):
    from keras_longformer.timing import time_calls

    path = get_path(point["path"])
    length = point["length"]
    row = dict(path=path.name, length=length)
    gc.collect()
    isolated = spec["isolated"]
    if not isolated:
        memory.reset_peak()
    baseline = memory.current_rss_bytes()
    load_average = os.getloadavg()[0]
    start = time.perf_counter()
    cpu_times = []
    try:
        call, sync, extra = build_step(path, spec["config"], length, spec.get("onnx_path"))

        def step():
            # CPU time of the whole process (every thread) per call: on a
            # shared machine it moves far less with the load than wall time.
            cpu_start = time.process_time()
            result = call()
            if sync is not None:
                sync(result)
            cpu_times.append(time.process_time() - cpu_start)

        timing = time_calls(step, repeats=spec["repeats"], warmup=spec["warmup"])
    except Exception as error:  # a point that fails is a row, not a crash
        row["skipped"] = f"failed: {first_line(error)}"
        return row
    peak = memory.peak_rss_bytes()
    row.update(extra)
    row.update(
        seconds=timing.median,
        times=list(timing.times),
        cpu_seconds=statistics.median(cpu_times[spec["warmup"]:]),
        load_average=load_average,
        first_seconds=timing.first,
        peak_rss_mib=peak / memory.MIB,
        added_rss_mib=max(peak - baseline, 0) / memory.MIB,
        memory_isolated=isolated,
        wall_seconds=time.perf_counter() - start,
    )
    return row


def run_setup(spec):
    """Matmul rates and (when asked) onnxruntime's matmul rate and the ONNX
    export, in a TensorFlow process."""
    from keras_longformer.bench.flops import measure_matmul_rates

    config = spec["config"]
    start = time.perf_counter()
    try:
        rates = measure_matmul_rates(
            config["hidden"], repeats=spec["setup"]["repeats"], warmup=spec["setup"]["warmup"],
            quick=spec["setup"]["quick"],
        )
        emit(dict(kind="matmul_rates", rates=rates, wall_seconds=time.perf_counter() - start))
    except Exception as error:
        emit(dict(kind="matmul_rates", error=first_line(error)))
    if spec.get("onnx_path"):
        _onnxruntime_rate(spec)
        from keras_longformer.bench.peers import export_layer

        start = time.perf_counter()
        try:
            error = export_layer(config, spec["onnx_path"], spec["setup"]["verify_length"])
            emit(dict(kind="export", max_abs_error=error, wall_seconds=time.perf_counter() - start))
        except Exception as failure:
            emit(dict(kind="export", error=first_line(failure)))


def _onnxruntime_rate(spec):
    """onnxruntime's own matmul rate, the limit of the exported layer."""
    from keras_longformer.bench.flops import measure_onnxruntime_matmul_rate

    start = time.perf_counter()
    try:
        rate = measure_onnxruntime_matmul_rate(
            spec["config"]["hidden"], repeats=spec["setup"]["repeats"],
            warmup=spec["setup"]["warmup"], quick=spec["setup"]["quick"],
        )
        emit(dict(kind="onnxruntime_matmul_rate", rate=rate,
                  wall_seconds=time.perf_counter() - start))
    except Exception as error:
        emit(dict(kind="onnxruntime_matmul_rate", error=first_line(error)))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0]) as handle:
        spec = json.load(handle)
    if spec.get("setup"):
        run_setup(spec)
    for point in spec["points"]:
        emit(dict(kind="point", row=run_point(spec, point)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
