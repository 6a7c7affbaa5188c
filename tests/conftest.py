import gc
import os
import shutil
import tempfile

import pytest

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

# One JAX compilation cache for the whole run: its xdist workers and every
# process they start (backend matrix, portable tests, data-parallel,
# examples) inherit this variable and share what each compiled (JAX's test
# models recompile the same steps after `load_model`: 101 s -> 86 s for
# test_models.py under JAX). A fresh directory per run, removed by the
# process that made it, so no run reads another's entries; a cache the
# user set is used and kept.
_OWNS_JAX_CACHE = "JAX_COMPILATION_CACHE_DIR" not in os.environ
if _OWNS_JAX_CACHE:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="keras-longformer-tests-jax-cache-")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")


def pytest_unconfigure(config):
    if _OWNS_JAX_CACHE:
        shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)


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
    "test_backends_portable_models.py",
    "test_backends_portable_recipes.py",
    "test_backends_portable_led.py",
    "test_backends_portable.py",
    "test_distributed.py",
    "test_distributed_example.py",
    "test_examples_models.py",
    "test_claims.py",
    "test_faults.py",
    "test_led_onnx_pair.py",
)


def pytest_collection_finish(session):
    # Collection imported TensorFlow, JAX, torch, keras and transformers: some
    # 640,000 objects that live as long as the process. Keras runs a full
    # `gc.collect()` on every attribute a quantized layer drops (23 per
    # `quantize("int8")` of a test model), and each walked them all again:
    # frozen, tests/test_lora_quantize.py takes 45 s instead of 80 s.
    gc.collect()
    gc.freeze()


def pytest_collection_modifyitems(config, items):
    def rank(item):
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order within a file is kept
    _refuse_tests_no_backend_runs(items)


def _refuse_tests_no_backend_runs(items):
    """A test skipped in this run that is not marked `backends` never runs:
    the JAX and torch runs keep only the marked ones. Such a test is a
    collection error, unless it waits for hardware (a GPU) this machine
    may not have."""
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return
    never = []
    for item in items:
        if item.get_closest_marker("backends"):
            continue
        for mark in item.iter_markers("skipif"):
            condition = mark.args[0] if mark.args else mark.kwargs.get("condition")
            reason = mark.kwargs.get("reason", "")
            if condition is True and not any(word in reason for word in ("GPU", "CUDA")):
                never.append(f"{item.nodeid} ({reason})")
    if never:
        raise pytest.UsageError(
            "Tests skipped here and not marked `backends` run on no backend: mark them "
            "`@pytest.mark.backends`:\n  " + "\n  ".join(never)
        )
