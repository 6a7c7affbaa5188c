"""The measured paths: our layer and the peers a user would pick instead.

A path is one implementation in one dtype and one mode (`forward`, or
`train` = forward + backward). Each knows the runtime its process needs (so
points of one runtime can share a process in `--quick`), how long its inputs
may be, and a conservative estimate of its peak memory, checked before it
runs so that a peer that would run out of memory is skipped with a note.
"""

import dataclasses

FLOAT32 = 4  # bytes


@dataclasses.dataclass(frozen=True)
class Path:
    """One measured implementation.

    Attributes:
        name: key in the JSON and on the plots.
        label: what a reader sees in the legend.
        family: `ours`, `keras_mha` or `hf_torch`.
        runtime: `keras` (on the chosen backend for ours, TensorFlow for
            Keras MHA), `torch` or `onnxruntime`.
        dtype: `float32` or `mixed_bfloat16`.
        mode: `forward`, `train` (forward + backward) or `generate` (one
            new token of a one-layer causal LM at that position, from its
            windowed cache: `keras_longformer.bench.generation`).
    """

    name: str
    label: str
    family: str
    runtime: str
    dtype: str
    mode: str

    @property
    def is_ours(self):
        return self.family == "ours"

    @property
    def rate_dtype(self):
        """The matmul rate this path is judged against."""
        return "bfloat16" if "bfloat16" in self.dtype else "float32"


PATHS = (
    Path("ours_float32_forward", "ours float32 fwd", "ours", "keras", "float32", "forward"),
    Path("ours_float32_train", "ours float32 fwd+bwd", "ours", "keras", "float32", "train"),
    Path("ours_bfloat16_forward", "ours mixed_bfloat16 fwd", "ours", "keras", "mixed_bfloat16", "forward"),
    Path("ours_bfloat16_train", "ours mixed_bfloat16 fwd+bwd", "ours", "keras", "mixed_bfloat16", "train"),
    Path("ours_onnxruntime_forward", "ours exported, onnxruntime", "ours", "onnxruntime", "float32", "forward"),
    Path("ours_generate", "ours causal LM, one new token", "ours", "keras", "float32", "generate"),
    Path("keras_mha_forward", "Keras MHA sliding_window fwd", "keras_mha", "keras", "float32", "forward"),
    Path("keras_mha_train", "Keras MHA sliding_window fwd+bwd", "keras_mha", "keras", "float32", "train"),
    Path("hf_torch_forward", "Hugging Face PyTorch fwd", "hf_torch", "torch", "float32", "forward"),
    Path("hf_torch_train", "Hugging Face PyTorch fwd+bwd", "hf_torch", "torch", "float32", "train"),
)
PATHS_BY_NAME = {path.name: path for path in PATHS}


def get_path(name):
    if name not in PATHS_BY_NAME:
        raise ValueError(
            f"Unknown benchmark path. Expected one of {sorted(PATHS_BY_NAME)}. "
            f"Received: path={name!r}"
        )
    return PATHS_BY_NAME[name]


def cannot_run(path, config, length):
    """Why `path` cannot take `length` tokens at all, or `None`."""
    if path.mode == "generate" and length < 3:
        return f"a generated token needs a prompt of 2 tokens or more; received length={length}"
    if path.family == "hf_torch" and length % (2 * config["window"]):
        return (
            f"Hugging Face's layer needs the length to be a multiple of its "
            f"attention_window {2 * config['window']}; received length={length}"
        )
    return None


def estimate_peak_bytes(path, config, length):
    """A conservative estimate of the memory `path` adds at `length`.

    Counted in score-sized float32 tensors (the largest live tensors) plus
    copies of the `[B, T, D]` activations; the multipliers are rounded up
    from peaks this benchmark measured at 4,096 tokens (Keras MHA forward
    1.7x its scores, forward + backward 3.8x; Hugging Face 3x and 5x of its
    chunked scores; ours 3x and 5x of its blocked scores).
    """
    batch, heads, hidden = config["batch"], config["heads"], config["hidden"]
    window, num_global = config["window"], config["num_global"]
    activations = batch * length * hidden * FLOAT32
    train = path.mode == "train"
    if path.family == "keras_mha":
        # A dense [T, T] mask and [B, N, T, T] scores and probabilities.
        scores = batch * heads * length * length * FLOAT32
        return (4.5 if train else 2.5) * scores + 12 * activations
    if path.family == "hf_torch":
        # Overlapping chunks of 2w keys, [B, N, chunks, 2w, 2w] scores,
        # then the diagonals [B, T, N, 2w + 1].
        chunks = max(length // window - 1, 1)
        scores = batch * heads * chunks * (2 * window) ** 2 * FLOAT32
        return (6 if train else 3) * scores + 20 * activations
    # Ours: blocks of about w / 2 queries against w / 2 + 2w keys, plus the
    # G global columns.
    keys_per_query = min(window // 2 + 2 * window, 3 * length) + num_global
    scores = batch * heads * length * keys_per_query * FLOAT32
    return (6 if train else 4) * scores + (12 if train else 10) * activations
