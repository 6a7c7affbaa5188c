"""The data-parallel checks' worker: every task model on one and on two devices.

    KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=2 \\
        python tests/distributed_worker.py DIR
    KERAS_BACKEND=tensorflow python tests/distributed_worker.py DIR

The process has two CPU devices. Each `DIR/<task>.keras` (saved by the
test, compiled with SGD, dropout off) is trained on `DIR/<task>.npz` twice:
on one device (`single`), then data-parallel over both (`parallel`:
`keras.distribution.DataParallel` on JAX, `tf.distribute.MirroredStrategy`
on TensorFlow). The epoch losses and final weights go to
`DIR/<mode>_<backend>_<task>.npz`; `tests/test_distributed.py` compares.
"""

import contextlib
import glob
import os
import sys

import keras
import numpy as np

import keras_longformer  # noqa: F401  (registers the classes)

EPOCHS, BATCH_SIZE = 3, 4


def two_devices(backend):
    """Returns a function that makes the data-parallel scope of one model."""
    if backend == "jax":
        devices = keras.distribution.list_devices("cpu")
        assert len(devices) == 2, devices

        @contextlib.contextmanager
        def data_parallel():
            keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
            try:
                yield
            finally:
                keras.distribution.set_distribution(None)

        return data_parallel
    import tensorflow as tf

    (cpu,) = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    return strategy.scope


def labels(data):
    if "start_logits" in data:
        return {"start_logits": data["start_logits"], "end_logits": data["end_logits"]}
    return data["labels"]


def train(directory):
    backend = keras.backend.backend()
    data_parallel = two_devices(backend)
    for path in sorted(glob.glob(os.path.join(directory, "*.keras"))):
        task = os.path.basename(path)[: -len(".keras")]
        data = dict(np.load(os.path.join(directory, f"{task}.npz")))
        x = {k: data[k] for k in ("token_ids", "padding_mask", "global_mask")}
        for mode, scope in (("single", contextlib.nullcontext), ("parallel", data_parallel)):
            with scope():
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
    train(sys.argv[1])
