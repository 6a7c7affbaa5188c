"""Serve an exported Longformer with onnxruntime, on CUDA (IO binding) or CPU.

Loads an ONNX file with `keras_longformer.export.onnx_session` (CUDA when a
CUDA session can really be created, else CPU, saying why), runs batches of
mixed lengths with global tokens (the first token plus a few "question"
tokens), and compares every batch with the Keras model it came from.

On CUDA the inputs are copied to the GPU once and the outputs stay there
(`io_binding`), as a server would do; only the comparison copies them back.
The Keras reference runs on the CPU (TensorFlow's GPU matmuls use TF32,
which is not a reference at 1e-4).

Run:
    python examples/serve_onnx.py                          # a small random backbone
    python examples/serve_onnx.py --model my.keras         # your model
    python examples/serve_onnx.py --onnx my.onnx --model my.keras --provider cuda
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help=".keras model (default: a small random backbone)")
    parser.add_argument("--onnx", help="exported .onnx file (default: export --model now)")
    parser.add_argument("--provider", choices=("auto", "cuda", "cpu"), default="auto")
    parser.add_argument(
        "--lengths", default="37,512,1000,2500", help="longest row of each batch, comma-separated"
    )
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per batch")
    parser.add_argument("--tf32", action="store_true", help="allow TF32 matmuls on CUDA")
    return parser.parse_args()


def small_backbone():
    import keras

    from keras_longformer.models import LongformerBackbone

    keras.utils.set_random_seed(0)
    return LongformerBackbone(
        vocabulary_size=1000,
        num_layers=2,
        num_heads=4,
        hidden_dim=64,
        intermediate_dim=128,
        window=32,
        max_sequence_length=4096,
    )


def make_batch(rng, session, batch, length, vocabulary, pad_id):
    """Rows of different lengths (the longest is `length`), right-padded;
    global: the first token and, in odd rows, three "question" tokens."""
    real = np.linspace(length, max(1, length // 3), batch).astype(int)
    padding = np.arange(length)[None, :] < real[:, None]
    token_ids = np.where(padding, rng.integers(3, vocabulary, (batch, length)), pad_id)
    global_mask = np.zeros((batch, length), bool)
    global_mask[:, 0] = True
    for row in range(1, batch, 2):
        global_mask[row, 1 : min(4, real[row])] = True
    arrays = {"token_ids": token_ids, "padding_mask": padding, "global_mask": global_mask}
    types = {"tensor(int32)": np.int32, "tensor(int64)": np.int64, "tensor(bool)": np.bool_}
    return {
        value.name: arrays[value.name].astype(types[value.type]) for value in session.get_inputs()
    }, padding


class Runner:
    """`run(feeds)` -> list of numpy outputs; on CUDA through IO binding."""

    def __init__(self, session):
        self.session = session
        self.names = [output.name for output in session.get_outputs()]
        self.on_cuda = session.get_providers()[0] == "CUDAExecutionProvider"

    def run(self, feeds):
        if not self.on_cuda:
            return self.session.run(self.names, feeds)
        import onnxruntime as ort

        binding = self.session.io_binding()
        for name, array in feeds.items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(array, "cuda", 0))
        for name in self.names:
            binding.bind_output(name, "cuda", 0)
        self.session.run_with_iobinding(binding)
        return binding  # the outputs stay on the GPU

    def to_numpy(self, outputs):
        if not self.on_cuda:
            return outputs
        return outputs.copy_outputs_to_cpu()


def main():
    args = parse_args()
    import tensorflow as tf

    # The Keras reference runs on the CPU (see the module docstring).
    tf.config.set_visible_devices([], "GPU")
    import keras

    from keras_longformer.export import export_onnx
    from keras_longformer.export import load_keras_model
    from keras_longformer.export import onnx_session
    from keras_longformer.export.verify import describe_model

    model = load_keras_model(args.model) if args.model else small_backbone()
    onnx_path = args.onnx
    if onnx_path is None:
        onnx_path = os.path.join(tempfile.mkdtemp(), "model.onnx")
        start = time.perf_counter()
        report = export_onnx(model, onnx_path, progress=sys.stderr.isatty())
        print(
            f"exported {onnx_path} in {time.perf_counter() - start:.1f} s: "
            f"{len(report.rows)} cases verified on CPU, max abs error {report.max_abs_error:.2e}"
        )
    cuda_options = {} if args.tf32 else {"use_tf32": 0}
    session = onnx_session(onnx_path, provider=args.provider, cuda_options=cuda_options)
    runner = Runner(session)
    print(f"onnxruntime providers: {session.get_providers()}")
    if runner.on_cuda:
        print(f"CUDA with IO binding, TF32 {'on' if args.tf32 else 'off'}")

    info = describe_model(model)
    vocabulary = info.vocabulary_size or 100
    pad_id = info.pad_token_id if info.pad_token_id is not None else 0
    rng = np.random.default_rng(0)
    print(f"{'length':>7} {'batch':>5} {'onnxruntime ms':>15} {'keras ms':>9} {'max abs error':>14}")
    worst = 0.0
    for length in (int(n) for n in args.lengths.split(",")):
        if info.max_sequence_length and length > info.max_sequence_length:
            print(f"{length:>7} skipped: over max_sequence_length {info.max_sequence_length}")
            continue
        feeds, padding = make_batch(rng, session, args.batch, length, vocabulary, pad_id)
        outputs = runner.run(feeds)  # warm-up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            outputs = runner.run(feeds)
            times.append(time.perf_counter() - start)
        actual = dict(zip(runner.names, runner.to_numpy(outputs)))
        start = time.perf_counter()
        expected = model(feeds, training=False)
        keras_seconds = time.perf_counter() - start
        if not isinstance(expected, dict):
            expected = {runner.names[0]: expected}
        error = 0.0
        for name, value in expected.items():
            value = keras.ops.convert_to_numpy(value)
            difference = np.abs(actual[name] - value)
            if difference.ndim >= 2 and difference.shape[:2] == padding.shape:
                difference = difference[padding]  # real tokens only
            error = max(error, float(np.max(difference)))
        worst = max(worst, error)
        print(
            f"{length:>7} {args.batch:>5} {statistics.median(times) * 1e3:>15.2f} "
            f"{keras_seconds * 1e3:>9.1f} {error:>14.2e}"
        )
    tolerance = 1e-2 if runner.on_cuda and args.tf32 else 1e-4
    print(f"max abs error {worst:.2e} (tolerance {tolerance:g})")
    return 0 if worst <= tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
