"""One model-benchmark process: `python -m keras_longformer.bench.model_worker SPEC.json`.

Runs one training-step point (`model_steps`) in a fresh process, so its peak
resident memory is its own, and prints one `BENCH_RESULT {json}` line. A
watchdog thread reads the resident memory every 20 ms: a step that grows
past `spec["memory_limit_bytes"]` ends the process with a skipped row saying
so, before the machine runs out of memory and the kernel kills something
else.
"""

import json
import os
import statistics
import sys
import threading
import time

from keras_longformer.bench import memory
from keras_longformer.bench.model_paths import get_model_path
from keras_longformer.bench.worker import emit
from keras_longformer.bench.worker import first_line

OVER_MEMORY_EXIT_CODE = 3


def watch_memory(row, limit_bytes, interval=0.02):
    """Starts a daemon thread that ends the process, reporting `row` as
    skipped, when its resident memory exceeds `limit_bytes`."""

    def watch():
        while True:
            resident = memory.current_rss_bytes()
            if resident > limit_bytes:
                emit(dict(kind="point", row=dict(
                    row,
                    skipped=f"stopped at {resident / memory.MIB / 1024:.1f} GiB resident, over "
                    f"the limit of {limit_bytes / memory.MIB / 1024:.1f} GiB "
                    "(80% of the memory available when the run started)",
                    over_memory=True,
                    stopped_rss_mib=resident / memory.MIB,
                )))
                os._exit(OVER_MEMORY_EXIT_CODE)
            time.sleep(interval)

    threading.Thread(target=watch, daemon=True).start()


def run_point(spec, point):
    from keras_longformer.bench.model_steps import training_step
    from keras_longformer.timing import time_calls

    path = get_model_path(point["path"])
    length = point["length"]
    row = dict(path=path.name, length=length)
    watch_memory(row, spec["memory_limit_bytes"])
    load_average = os.getloadavg()[0]
    start = time.perf_counter()
    try:
        baseline = memory.current_rss_bytes()
        call, sync = training_step(path, spec["config"], length)
        built = memory.current_rss_bytes()
        cpu_times = []

        def step():
            cpu_start = time.process_time()
            result = call()
            if sync is not None:
                sync(result)
            cpu_times.append(time.process_time() - cpu_start)

        timing = time_calls(step, repeats=spec["repeats"], warmup=spec["warmup"])
    except Exception as error:  # a point that fails is a row, not a crash
        return dict(row, skipped=f"failed: {first_line(error)}")
    if path.is_ours:
        import keras

        row["backend"] = keras.config.backend()
    return dict(
        row,
        seconds=timing.median,
        times=list(timing.times),
        first_seconds=timing.first,
        cpu_seconds=statistics.median(cpu_times[spec["warmup"]:]),
        load_average=load_average,
        baseline_rss_mib=baseline / memory.MIB,
        model_rss_mib=built / memory.MIB,
        peak_rss_mib=memory.peak_rss_bytes() / memory.MIB,
        wall_seconds=time.perf_counter() - start,
    )


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0]) as handle:
        spec = json.load(handle)
    for point in spec["points"]:
        emit(dict(kind="point", row=run_point(spec, point)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
