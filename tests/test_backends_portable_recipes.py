"""The long-from-short recipe, LoRA, int8, keras-hub's harness and gradient checkpointing under JAX and torch.

The tests marked `backends` in these files, one process per backend, in a
file of its own so that pytest-xdist runs it beside the other portable runs.
"""

import pytest

from test_backend_matrix import OTHER_BACKENDS
from test_backends_portable import run_portable_tests

RECIPE_TEST_FILES = [
    "test_convert_to_long.py",
    "test_lora_quantize.py",
    "test_keras_hub_harness.py",
    "test_gradient_checkpointing.py",
    "test_staged_training.py",
    "test_attention_pattern.py",
]


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_recipe_tests_pass_under(backend):
    run_portable_tests(backend, RECIPE_TEST_FILES)
