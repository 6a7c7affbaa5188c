"""The tests marked `backends` pass under JAX and torch too.

Keras picks its backend once per process, so each backend runs pytest in
its own process on the files below, keeping only the tests marked
`backends` (`-m backends`). Files of their own (the task models in
`tests/test_backends_portable_models.py`), so that pytest-xdist runs them
beside `tests/test_backend_matrix.py` and each other.
"""

import pytest

from test_backend_matrix import OTHER_BACKENDS
from test_backend_matrix import run_under

# Files whose tests marked `backends` also run under JAX and torch
# (test_models.py runs from tests/test_backends_portable_models.py).
PORTABLE_TEST_FILES = [
    "test_attention_op.py",
    "test_global_tokens.py",
    "test_convert_huggingface.py",
    "test_keras_layer_suite.py",
    "test_bad_inputs.py",
]


def run_portable_tests(backend, files):
    """pytest on the tests marked `backends` of `files`, under `backend`."""
    result = run_under(
        backend,
        ["-m", "pytest", "-q", "-n", "0", "-m", "backends", "-p", "no:cacheprovider", *files],
        timeout=1500,
    )
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_portable_tests_pass_under(backend):
    run_portable_tests(backend, PORTABLE_TEST_FILES)
