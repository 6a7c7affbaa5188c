import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# XLA's CPU backend (JAX, and TensorFlow's jit-compiled steps) spends most of
# a small test's time optimizing code that then runs once or twice: level 0
# compiles the JAX model tests ~1.6x faster (181 s -> 115 s for
# test_models.py's portable fit/save/load and bfloat16 tests). Numbers are
# checked at the same tolerances; every process the tests start inherits it.
_FAST_COMPILE = "--xla_backend_optimization_level=0"
if _FAST_COMPILE not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FAST_COMPILE}".strip()


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


# Files that start processes of their own and take minutes: first, so that
# pytest-xdist's workers run them beside the many short files rather than
# after them (`--dist loadfile --no-loadscope-reorder` hands out files in
# collection order; its default order is by number of tests).
LONGEST_FIRST = (
    "test_backend_matrix.py",
    "test_backends_portable.py",
    "test_distributed.py",
    "test_examples_models.py",
    "test_claims.py",
)


def pytest_collection_modifyitems(config, items):
    def rank(item):
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order within a file is kept
