import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "backends: also run under the JAX and torch backends "
        "(tests/test_backend_matrix.py runs them in a subprocess per backend)",
    )
