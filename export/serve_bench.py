"""`benchmark_serving`: serving latency of exported ONNX files in onnxruntime.

Latency percentiles (p50, p90, p99) and tokens per second over a grid of
batch sizes and sequence lengths, for one or more files (float32, float16
and int8 exports of one model, say), side by side. Inputs are random but
valid for each file: token ids in its vocabulary, avoiding its pad id,
rows of different real lengths with a global first token, made by the
export's own verification helper from the file's metadata.

On CUDA the inputs are copied to the GPU once, before timing, and bound
with IO binding; outputs stay on the device. So the figures are the
model's latency, not the host-to-device copy of its inputs.
"""

import dataclasses
import json
import os
import platform
import tempfile

import numpy as np

from keras_longformer.timing import time_calls

PROVIDERS = ("auto", "cuda", "cpu")
CUDA = "CUDAExecutionProvider"
# Global tokens of the benchmark's rows: the first (a classifier's <s>).
GLOBAL_PATTERN = "first"


@dataclasses.dataclass(frozen=True)
class ServeBenchRow:
    """One measured grid point of one file.

    `tokens_per_second` counts every position of the batch (padding
    included: the graph computes them all) at the median latency:
    `batch_size * length / (p50_ms / 1000)`.
    """

    model: str
    path: str
    provider: str
    batch_size: int
    length: int
    repeats: int
    first_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    tokens_per_second: float

    def as_dict(self):
        return dataclasses.asdict(self)


def benchmark_serving(
    onnx_paths,
    *,
    batch_sizes=(1, 8),
    lengths=(512, 4096),
    repeats=10,
    provider="auto",
    progress=False,
    seed=0,
):
    """Measures serving latency of ONNX files over batch sizes and lengths.

    Each file gets one `onnx_session(path, provider)`; each grid point one
    warm-up and `repeats` timed calls (`keras_longformer.timing.time_calls`)
    on one fixed random batch of shape `[batch_size, length]`.

    Args:
        onnx_paths: a path or a list of paths of `.onnx` files.
        batch_sizes: ints >= 1.
        lengths: ints >= 1, sequence lengths; none may exceed a file's
            `max_sequence_length` (from its metadata).
        repeats: int >= 1, timed calls per grid point.
        provider: `"auto"`, `"cuda"` or `"cpu"`, as for `onnx_session`.
        progress: whether to show a progress bar (tqdm) over the grid.
        seed: seed of the random inputs.

    Returns:
        A list of `ServeBenchRow`, grouped by batch size and length, the
        files in the order given within each group.

    Raises:
        ValueError: a bad argument (naming it) or a length past a file's
            maximum, before any session is created. FileNotFoundError: a
            missing file.

    Example:

    ```python
    rows = benchmark_serving(["model.onnx", "model-int8.onnx"], batch_sizes=[1],
                       lengths=[512], provider="cpu")
    print(format_table(rows))
    ```
    """
    paths = [onnx_paths] if isinstance(onnx_paths, (str, os.PathLike)) else list(onnx_paths)
    if not paths:
        raise ValueError(f"`onnx_paths` must name at least one file. Received: onnx_paths={onnx_paths!r}")
    batch_sizes = _positive_ints("batch_sizes", batch_sizes)
    lengths = _positive_ints("lengths", lengths)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"`repeats` must be an int >= 1. Received: repeats={repeats!r}")
    if provider not in PROVIDERS:
        raise ValueError(f"`provider` must be one of {PROVIDERS}. Received: provider={provider!r}")
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No ONNX file at {os.fspath(path)!r}")
    graphs = [_load_graph(path) for path in paths]
    for path, graph in zip(paths, graphs):
        _check_lengths(path, graph, lengths)

    from tqdm.auto import tqdm

    from keras_longformer.export import onnx_session

    labels = _labels(paths)
    grid = [(b, n) for b in batch_sizes for n in lengths]
    measured = {}
    bar = tqdm(total=len(paths) * len(grid), desc="serve-bench", unit="point", disable=not progress)
    for path, label, graph in zip(paths, labels, graphs):
        session = onnx_session(path, provider=provider)
        rng = np.random.default_rng(seed)
        for batch_size, length in grid:
            bar.set_postfix_str(f"{label} batch={batch_size} length={length}")
            feeds = make_feeds(graph, batch_size, length, rng=rng)
            run = PreparedRun(session, feeds)
            timing = time_calls(run, repeats=repeats, warmup=1)
            measured[label, batch_size, length] = _row(
                label, os.path.abspath(path), run.provider, batch_size, length, timing
            )
            bar.update()
        del run, session  # free its memory (GPU included) before the next file
    bar.close()
    return [measured[label, b, n] for b, n in grid for label in labels]


def _positive_ints(name, values):
    values = [values] if isinstance(values, int) and not isinstance(values, bool) else list(values)
    if not values or any(
        isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in values
    ):
        raise ValueError(f"`{name}` must be a non-empty list of ints >= 1. Received: {name}={values!r}")
    return [int(v) for v in values]


def _labels(paths):
    """Short names of the files: their base names, or the paths when two share one."""
    names = [os.path.basename(os.fspath(path)) for path in paths]
    if len(set(names)) == len(names):
        return names
    return [os.fspath(path) for path in paths]


def _row(label, path, provider, batch_size, length, timing):
    p50, p90, p99 = (timing.percentile(q) for q in (50, 90, 99))
    return ServeBenchRow(
        model=label,
        path=path,
        provider=provider,
        batch_size=batch_size,
        length=length,
        repeats=len(timing.times),
        first_ms=timing.first * 1e3,
        p50_ms=p50 * 1e3,
        p90_ms=p90 * 1e3,
        p99_ms=p99 * 1e3,
        tokens_per_second=batch_size * length / p50 if p50 > 0 else float("inf"),
    )


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------


def _load_graph(graph_or_path):
    """A ModelProto as given, or read from a path without its weights."""
    if not isinstance(graph_or_path, (str, os.PathLike)):
        return graph_or_path
    import onnx

    path = os.fspath(graph_or_path)
    try:
        return onnx.load(path, load_external_data=False)
    except Exception as error:  # protobuf's DecodeError and friends
        first = str(error).strip().splitlines()[:1] or [type(error).__name__]
        raise ValueError(f"Not a readable ONNX file: {path!r} ({first[0]})") from None


def input_specs(graph):
    """{input name: (shape, numpy dtype name)} of a ModelProto or `.onnx` path;
    symbolic dims are None. Types come from ONNX's own map."""
    import onnx

    graph = _load_graph(graph)
    initializers = {tensor.name for tensor in graph.graph.initializer}
    specs = {}
    for value in graph.graph.input:
        if value.name in initializers:
            continue
        tensor_type = value.type.tensor_type
        shape = tuple(
            dim.dim_value if dim.HasField("dim_value") else None for dim in tensor_type.shape.dim
        )
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
        specs[value.name] = (shape, np.dtype(dtype).name)
    return specs


def model_info(graph):
    """What `make_inputs` needs (vocabulary, pad id, maximum length, windows)
    from the file's `keras_longformer.*` metadata."""
    from keras_longformer.export import read_metadata
    from keras_longformer.export.verify import ModelInfo

    metadata = read_metadata(_load_graph(graph))
    integer = lambda key: metadata.get(key) if isinstance(metadata.get(key), int) else None  # noqa: E731
    return ModelInfo(
        windows=[tuple(w) for w in metadata.get("windows") or []],
        vocabulary_size=integer("vocabulary_size"),
        pad_token_id=integer("pad_token_id"),
        max_sequence_length=integer("max_sequence_length"),
    )


def make_feeds(graph, batch_size, length, *, rng, pattern=GLOBAL_PATTERN):
    """Random valid numpy inputs of `[batch_size, length]` for a ModelProto or
    `.onnx` path: rows of different real lengths, global tokens per `pattern`."""
    from keras_longformer.export.verify import make_inputs

    graph = _load_graph(graph)
    return make_inputs(
        input_specs(graph), length, pattern, model_info(graph), rng=rng, batch_size=batch_size
    )


def _check_lengths(path, graph, lengths):
    max_length = model_info(graph).max_sequence_length
    too_long = [n for n in lengths if max_length and n > max_length]
    if too_long:
        raise ValueError(
            f"`lengths` {too_long} exceed the max_sequence_length {max_length} of "
            f"{os.fspath(path)!r}. Received: lengths={lengths}"
        )


# ---------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------


class PreparedRun:
    """`run()` runs `session` once on fixed `feeds`; `outputs()` returns the
    last call's outputs as {name: numpy array}.

    On CUDA, the inputs are copied to the GPU here, once, and bound with IO
    binding together with device outputs, so a call is the model's work
    only; `outputs()` copies the results back. Elsewhere a call is
    `session.run`.
    """

    def __init__(self, session, feeds):
        self.session = session
        self.names = [output.name for output in session.get_outputs()]
        self.provider = session.get_providers()[0]
        self._last = None
        self._binding = None
        if self.provider == CUDA:
            self._binding = self._bind(feeds)
        else:
            self._feeds = feeds

    def _bind(self, feeds):
        import onnxruntime

        options = self.session.get_provider_options().get(CUDA, {})
        device_id = int(options.get("device_id", 0))
        binding = self.session.io_binding()
        # Kept referenced: the binding points at their device memory.
        self._device_inputs = {
            name: onnxruntime.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), "cuda", device_id)
            for name, array in feeds.items()
        }
        for name, value in self._device_inputs.items():
            binding.bind_ortvalue_input(name, value)
        for name in self.names:
            binding.bind_output(name, "cuda", device_id)
        return binding

    def __call__(self):
        if self._binding is not None:
            self.session.run_with_iobinding(self._binding)
        else:
            self._last = self.session.run(self.names, self._feeds)

    def outputs(self):
        if self._binding is not None:
            values = self._binding.copy_outputs_to_cpu()
        else:
            values = self._last
        if values is None:
            raise RuntimeError("PreparedRun.outputs() needs a call first")
        return dict(zip(self.names, values))


# ---------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------


def format_table(rows):
    """The rows as a text table: each grid point's files side by side, with
    the speed of each relative to the first file."""
    lines = [
        f"{'batch':>5} {'length':>7}  {'model':<24} {'provider':<9} {'p50 ms':>9} "
        f"{'p90 ms':>9} {'p99 ms':>9} {'tokens/s':>11} {'speed':>7}"
    ]
    baseline = {}
    for row in rows:
        key = (row.batch_size, row.length)
        baseline.setdefault(key, row.p50_ms)
        speed = baseline[key] / row.p50_ms if row.p50_ms > 0 else float("inf")
        lines.append(
            f"{row.batch_size:>5} {row.length:>7}  {row.model:<24} "
            f"{row.provider.replace('ExecutionProvider', ''):<9} {row.p50_ms:>9.2f} "
            f"{row.p90_ms:>9.2f} {row.p99_ms:>9.2f} {row.tokens_per_second:>11,.0f} {speed:>6.2f}x"
        )
    return "\n".join(lines)


def report_dict(rows, *, provider_requested=None):
    """The rows and the machine they ran on, as a JSON-ready dict."""
    import onnxruntime

    return {
        "benchmark": "keras-longformer serve-bench",
        "provider_requested": provider_requested,
        "onnxruntime": onnxruntime.__version__,
        "machine": platform.machine(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "tokens_per_second": "batch_size * length / (p50_ms / 1000)",
        "rows": [row.as_dict() for row in rows],
    }


def write_json(report, path):
    """Writes `report` (a dict) as JSON to `path` atomically (temporary file
    beside it, then a rename); an existing file is replaced."""
    path = os.path.abspath(os.fspath(path))
    handle, temporary = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=os.path.dirname(path)
    )
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(report, stream, indent=2)
            stream.write("\n")
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path

