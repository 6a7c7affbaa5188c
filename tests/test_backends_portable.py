"""The tests marked `backends` pass under JAX and torch too.

Keras picks its backend once per process, so each backend runs pytest in
its own process on the files below, keeping only the tests marked
`backends` (`-m backends`). A file of its own, so that pytest-xdist runs it
beside `tests/test_backend_matrix.py`.
"""

import pytest

from test_backend_matrix import OTHER_BACKENDS
from test_backend_matrix import run_under

# Files whose tests marked `backends` also run under JAX and torch.
PORTABLE_TEST_FILES = [
    "test_attention_op.py",
    "test_global_tokens.py",
    "test_models.py",
    "test_convert_huggingface.py",
    "test_keras_layer_suite.py",
    "test_bad_inputs.py",
]


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_portable_tests_pass_under(backend):
    result = run_under(
        backend,
        ["-m", "pytest", "-q", "-n", "0", "-m", "backends", "-p", "no:cacheprovider", *PORTABLE_TEST_FILES],
        timeout=1500,
    )
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
