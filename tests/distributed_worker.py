"""One side of the data-parallel checks: every task model on one or two devices.

    KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=2 \\
        python tests/distributed_worker.py parallel DIR
    KERAS_BACKEND=tensorflow python tests/distributed_worker.py single DIR

Loads each `DIR/<task>.keras` (saved by the test, dropout off), trains it
with SGD on `DIR/<task>.npz`, on one device (`single`) or data-parallel
over two CPU devices (`parallel`: `keras.distribution.DataParallel` on JAX,
`tf.distribute.MirroredStrategy` on TensorFlow), and writes the epoch
losses and final weights to `DIR/<mode>_<backend>_<task>.npz`.
`tests/test_distributed.py` compares the two modes.
"""

import contextlib
import glob
import os
import sys

import keras
import numpy as np

import keras_longformer  # noqa: F401  (registers the classes)

EPOCHS, BATCH_SIZE = 3, 4


def parallel_scope(backend):
    """Two CPU devices, data-parallel: the backend's own mechanism."""
    if backend == "jax":
        devices = keras.distribution.list_devices("cpu")
        assert len(devices) == 2, devices
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        return contextlib.nullcontext()
    import tensorflow as tf

    (cpu,) = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    return strategy.scope()


def labels(data):
    if "start_logits" in data:
        return {"start_logits": data["start_logits"], "end_logits": data["end_logits"]}
    return data["labels"]


def train(mode, directory):
    backend = keras.backend.backend()
    scope = parallel_scope(backend) if mode == "parallel" else contextlib.nullcontext()
    with scope:
        for path in sorted(glob.glob(os.path.join(directory, "*.keras"))):
            task = os.path.basename(path)[: -len(".keras")]
            data = dict(np.load(os.path.join(directory, f"{task}.npz")))
            x = {k: data[k] for k in ("token_ids", "padding_mask", "global_mask")}
            model = keras.models.load_model(path)  # compiled as saved: SGD
            history = model.fit(
                x, labels(data), epochs=EPOCHS, batch_size=BATCH_SIZE, shuffle=False, verbose=0
            )
            weights = [keras.ops.convert_to_numpy(w) for w in model.weights]
            np.savez(
                os.path.join(directory, f"{mode}_{backend}_{task}.npz"),
                losses=np.array(history.history["loss"]),
                **{f"w{i}": w for i, w in enumerate(weights)},
            )


if __name__ == "__main__":
    train(sys.argv[1], sys.argv[2])
