"""The long-document classifier, trained data-parallel on every device there is.

    python examples/distributed_training.py --backend jax
    python examples/distributed_training.py --backend tensorflow --cpu-devices 2 --quick

The task, model and report are those of `long_document_classification.py`
(a marker 1,200+ tokens from the `<s>` the classifier reads); here each
batch is split across devices:
- JAX: `keras.distribution.DataParallel` over `keras.distribution.list_devices()`
  (every GPU of the host; with `keras.distribution.initialize()` first,
  every GPU of every host);
- TensorFlow: `tf.distribute.MirroredStrategy` over the host's GPUs.
`--cpu-devices N` splits the CPU into N devices instead (JAX:
`XLA_FLAGS=--xla_force_host_platform_device_count=N`; TensorFlow: N logical
CPU devices), which is how the tests run this script without a GPU.
`--batch-size` is the global batch: each device gets `batch / devices`.
"""

import argparse
import contextlib
import os
import sys

EXAMPLES = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, EXAMPLES)

import long_document_classification as single  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["jax", "tensorflow"], default="jax",
                        help="Keras backend (default jax)")
    parser.add_argument("--cpu-devices", type=int, default=None, metavar="N",
                        help="split the CPU into N devices (no GPU needed)")
    known, rest = parser.parse_known_args(argv)
    if known.cpu_devices is not None and known.cpu_devices < 1:
        parser.error(f"--cpu-devices must be >= 1. Received: {known.cpu_devices}")
    return known, single.parse_args(rest)


def set_up_backend(backend, cpu_devices):
    """Environment that must be in place before Keras (and XLA) start."""
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if backend == "jax" and cpu_devices:
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "")
            + f" --xla_force_host_platform_device_count={cpu_devices}"
        )
        os.environ["JAX_PLATFORMS"] = "cpu"


def data_parallel_scope(backend, cpu_devices):
    """Returns `(scope, devices)`: the backend's data-parallel mechanism."""
    if backend == "jax":
        import keras

        kind = "cpu" if cpu_devices else None
        devices = keras.distribution.list_devices(kind)
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        return contextlib.nullcontext(), devices
    import tensorflow as tf

    if cpu_devices:
        (cpu,) = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_devices
        )
        devices = [f"/cpu:{i}" for i in range(cpu_devices)]
    else:
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or ["/cpu:0"]
    strategy = tf.distribute.MirroredStrategy(devices)
    return strategy.scope(), devices


def main(argv=None):
    options, args = parse_args(argv)
    set_up_backend(options.backend, options.cpu_devices)
    scope, devices = data_parallel_scope(options.backend, options.cpu_devices)
    if args.batch_size % len(devices):
        print(
            f"error: --batch-size {args.batch_size} must be a multiple of the "
            f"{len(devices)} devices", file=sys.stderr,
        )
        return 2
    print(f"{options.backend}: data-parallel over {len(devices)} devices: {devices}; "
          f"{args.batch_size // len(devices)} documents per device per step")
    with scope:
        return single.run(args)


if __name__ == "__main__":
    sys.exit(main())
