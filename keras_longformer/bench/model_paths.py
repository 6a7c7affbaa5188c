"""The paths of the model benchmark: a whole training step, ours and Hugging Face's.

A path is one model trained one way: ours or Hugging Face's `LongformerModel`,
with or without gradient checkpointing. Its useful FLOPs are the encoder's
(`model_useful_flops`): what a training step must compute, so recomputing
the forward pass under checkpointing is paid in time, not counted as work.
"""

import dataclasses

from keras_longformer.bench.flops import training_flops
from keras_longformer.bench.flops import useful_flops

# The base configuration (RoBERTa-base, window 256 each side) and the small
# one `--quick` trains.
BASE = dict(layers=12, hidden=768, heads=12, window=256)
SMALL = dict(layers=2, hidden=128, heads=2, window=32)
FULL_LENGTHS = (1024, 2048, 4096, 8192, 16384)
QUICK_LENGTHS = (256, 512)


@dataclasses.dataclass(frozen=True)
class ModelPath:
    """One measured training step.

    Attributes:
        name: key in the JSON and on the plots.
        label: what a reader sees in the legend.
        family: `ours` or `hf_torch`.
        checkpointing: bool, gradient checkpointing per encoder layer.
    """

    name: str
    label: str
    family: str
    checkpointing: bool

    @property
    def is_ours(self):
        return self.family == "ours"


MODEL_PATHS = (
    ModelPath("ours_train", "ours", "ours", False),
    ModelPath("ours_checkpointed_train", "ours, gradient checkpointing", "ours", True),
    ModelPath("hf_torch_train", "Hugging Face PyTorch", "hf_torch", False),
    ModelPath("hf_torch_checkpointed_train", "Hugging Face PyTorch, gradient checkpointing",
              "hf_torch", True),
)
MODEL_PATHS_BY_NAME = {path.name: path for path in MODEL_PATHS}


def get_model_path(name):
    if name not in MODEL_PATHS_BY_NAME:
        raise ValueError(
            f"Unknown model benchmark path. Expected one of {sorted(MODEL_PATHS_BY_NAME)}. "
            f"Received: path={name!r}"
        )
    return MODEL_PATHS_BY_NAME[name]


def cannot_run(path, config, length):
    """Why `path` cannot take `length` tokens at all, or `None`."""
    if path.family == "hf_torch" and length % (2 * config["window"]):
        return (
            f"Hugging Face's model needs the length to be a multiple of its "
            f"attention_window {2 * config['window']}; received length={length}"
        )
    if config["num_global"] > length:
        return f"{config['num_global']} global tokens do not fit in {length} tokens"
    return None


def model_useful_flops(config, length):
    """Useful FLOPs of one training step of the encoder (multiply-add = 2).

    Per layer, the attention's (`flops.useful_flops`: projections, the band
    of `2w + 1` keys, the global rows and columns) and the feed-forward's
    two `T x D x 4D` matmuls; forward and backward are 3x the forward. The
    embeddings (lookups), the pooler and the loss (one `D`-vector each, or
    elementwise) are left out: under 0.1% at 1,024 tokens.
    """
    hidden, batch = config["hidden"], config["batch"]
    attention = useful_flops(
        length=length, hidden=hidden, heads=config["heads"],
        head_dim=hidden // config["heads"], window=config["window"],
        num_global=config["num_global"], batch=batch,
    )
    feed_forward = batch * 2 * 2 * length * hidden * 4 * hidden
    return training_flops(config["layers"] * (attention + feed_forward))
