"""LED (backbone parity with Hugging Face, logits, greedy generation, fit) under JAX and torch.

The tests marked `backends` in these files, one process per backend, in a
file of its own so that pytest-xdist runs it beside the other portable runs.
"""

import pytest

from test_backend_matrix import OTHER_BACKENDS
from test_backends_portable import run_portable_tests

LED_TEST_FILES = [
    "test_led_huggingface.py",
    "test_led_seq2seq_lm.py",
    "test_led_from_bart.py",
    "test_led_keras_hub_harness.py",
]


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_led_tests_pass_under(backend):
    run_portable_tests(backend, LED_TEST_FILES)
