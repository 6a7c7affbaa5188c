import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "backends: also run under the JAX and torch backends "
        "(tests/test_backend_matrix.py runs them in a subprocess per backend)",
    )


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one worker per core, at most 4 (each holds TensorFlow,
    and the backend matrix and data-parallel tests start processes of
    their own)."""
    return max(1, min(os.cpu_count() or 1, 4))
