"""One timing loop for the benchmark, `check`, `serve-bench` and examples.

Every figure the project publishes is a median over repeated calls after a
warm-up (tracing, compilation, allocation), measured the same way here.
"""

import dataclasses
import statistics
import time


@dataclasses.dataclass(frozen=True)
class Timing:
    """Seconds of one measured call.

    Attributes:
        first: seconds of the first (warm-up) call, tracing included.
        times: seconds of each timed call after the warm-up.
    """

    first: float
    times: tuple

    @property
    def median(self):
        return statistics.median(self.times)

    @property
    def best(self):
        return min(self.times)

    def percentile(self, q):
        """The `q`-th percentile (0..100) of the timed calls, interpolated."""
        ordered = sorted(self.times)
        if len(ordered) == 1:
            return ordered[0]
        rank = (len(ordered) - 1) * q / 100.0
        low = int(rank)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def time_calls(fn, *, repeats=5, warmup=1, sync=None):
    """Times `fn()`: `warmup` untimed calls, then `repeats` timed ones.

    Args:
        fn: callable with no arguments; its result is passed to `sync`.
        repeats: int >= 1, timed calls.
        warmup: int >= 1, untimed calls first (the first is `Timing.first`).
        sync: optional callable on `fn`'s result that blocks until the
            device has finished (asynchronous backends: JAX, CUDA torch).

    Returns:
        A `Timing`.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"`repeats` must be an int >= 1. Received: repeats={repeats!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 1:
        raise ValueError(f"`warmup` must be an int >= 1. Received: warmup={warmup!r}")
    sync = sync or (lambda result: result)
    first = None
    for _ in range(warmup):
        start = time.perf_counter()
        sync(fn())
        first = time.perf_counter() - start if first is None else first
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        sync(fn())
        times.append(time.perf_counter() - start)
    return Timing(first=first, times=tuple(times))
