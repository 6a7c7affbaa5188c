"""Dropout that draws the same masks when a checkpointed layer is recomputed.

Gradient checkpointing runs a layer's forward pass again during the
backward pass. Keras's `Dropout` draws from a `SeedGenerator` whose state
moves at every draw, so the recomputation would draw new masks and the
gradients would belong to a different network than the loss. Here the
layer draws one seed outside the recomputed function and passes it in as a
tensor; inside, every `Dropout` sublayer draws from `ReplayedSeeds` made
from it, which give the same sequence of seeds each time the function runs.
"""

import contextlib

from keras import ops
from keras.random import SeedGenerator


class ReplayedSeeds(SeedGenerator):
    """A `SeedGenerator` whose draws are `base + [stream, k]`, k = 1, 2, ...

    Holds no state variable: a fresh one, made from the same `base` tensor,
    draws the same seeds again.
    """

    def __init__(self, base, stream):  # noqa: D107 (no SeedGenerator state on purpose)
        self._base = base
        self._stream = stream
        self._draws = 0
        # Not None: Keras's torch dropout then draws from this generator's
        # seeds, not from torch's global (unseeded) one.
        self._initial_seed = "replayed"

    def next(self, ordered=True):
        self._draws += 1
        offset = ops.convert_to_tensor([self._stream * 1_000_003, self._draws], dtype=self._base.dtype)
        return self._base + offset


@contextlib.contextmanager
def replayed_dropout_seeds(dropout_layers, base):
    """Makes each of `dropout_layers` draw from `ReplayedSeeds(base, i)` meanwhile."""
    saved = [layer.seed_generator for layer in dropout_layers]
    # object.__setattr__: past Keras's attribute tracking, which would
    # track the stand-in (it has no state variable) as the layer's own.
    try:
        for stream, layer in enumerate(dropout_layers):
            object.__setattr__(layer, "seed_generator", ReplayedSeeds(base, stream))
        yield
    finally:
        for layer, generator in zip(dropout_layers, saved):
            object.__setattr__(layer, "seed_generator", generator)
