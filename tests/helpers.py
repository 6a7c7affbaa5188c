"""What several test files share: paths, the one GPU probe, example loading,
the max-abs-error measure and a small backbone."""

import importlib.util
import os

import keras
import numpy as np
import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
EXAMPLES = os.path.join(ROOT, "examples")

# The suite's one GPU probe: an NVIDIA device node, decided by the machine,
# never by asking the code under test (whose CUDA detection is being tested).
HAS_GPU = os.path.isdir("/dev") and any(
    name.startswith("nvidia") and name[6:].isdigit() for name in os.listdir("/dev")
)
# On a GPU machine these tests run, and a CUDA provider that does not come up fails them.
requires_gpu = pytest.mark.skipif(not HAS_GPU, reason="needs an NVIDIA GPU: this machine has no /dev/nvidiaN")


def load_example(name):
    """`examples/<name>.py` as a module."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def max_abs_error(actual, expected, where=None):
    """Max |actual - expected| in float64, over `where` if given. The shapes
    must be equal: a broadcast would compare the wrong entries silently."""
    actual = np.asarray(keras.ops.convert_to_numpy(actual), np.float64)  # torch outputs may require grad
    expected = np.asarray(keras.ops.convert_to_numpy(expected), np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    difference = np.abs(actual - expected)
    return float(np.max(difference[where] if where is not None else difference))


def small_backbone(**overrides):
    """A two-layer Longformer small enough to trace fast: windows 2 and 3, the
    second layer's heads dilated 1 and 2, no dropout."""
    from keras_longformer import models

    kwargs = dict(
        vocabulary_size=30, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16,
        window=[2, 3], dilation=[1, [1, 2]], max_sequence_length=32, dropout=0.0,
        attention_dropout=0.0,
    )
    kwargs.update(overrides)
    return models.LongformerBackbone(**kwargs)
