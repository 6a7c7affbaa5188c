"""The task-model tests marked `backends` pass under JAX and torch too.

The longest of the portable runs (every task fits, saves and reloads), in a
file of its own so that pytest-xdist runs it beside the others
(`tests/test_backends_portable.py`).
"""

import pytest

from test_backend_matrix import OTHER_BACKENDS
from test_backends_portable import run_portable_tests


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_portable_model_tests_pass_under(backend):
    run_portable_tests(backend, ["test_models.py"])
