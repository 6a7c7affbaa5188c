"""Serve an exported Longformer with onnxruntime, on CUDA (IO binding) or CPU.

Loads an ONNX file with `keras_longformer.export.onnx_session` (CUDA when a
CUDA session can really be created, else CPU, saying why), runs batches of
mixed lengths with global tokens (the first token plus a few "question"
tokens), and compares every batch with the Keras model it came from. With
`--texts`, a task model's own preprocessor tokenizes raw text for the file
(the ONNX file holds no tokenizer: tokenization stays in Python).

On CUDA the inputs are copied to the GPU once per batch, before the timed
calls, and the outputs stay there (`io_binding`), as a server would do; only
the comparison copies them back. Runs and timing are `keras-longformer
serve-bench`'s own (`PreparedRun`, `keras_longformer.timing.time_calls`);
use that command for latency over a grid of batch sizes and lengths.
The Keras reference runs on the CPU (TensorFlow's GPU matmuls use TF32,
which is not a reference at 1e-4).

Run:
    python examples/serve_onnx.py                          # a small random backbone
    python examples/serve_onnx.py --model my.keras         # your model
    python examples/serve_onnx.py --onnx my.onnx --model my.keras --provider cuda
    python examples/serve_onnx.py --model classifier.keras --texts docs.txt  # raw text
"""

import argparse
import os
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
    parser.add_argument(
        "--texts", help="a UTF-8 file of raw texts, one per line, served as one more batch "
        "(tokenized by the --model task's own preprocessor)",
    )
    parser.add_argument(
        "--save-outputs", help="write the --texts batch's features and onnxruntime outputs "
        "to this .npz file (feature_<name>, output_<name>)",
    )
    args = parser.parse_args()
    if args.save_outputs and not args.texts:
        parser.error(f"--save-outputs saves the --texts batch; no --texts given. "
                     f"Received: --save-outputs={args.save_outputs!r}")
    return args


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


def make_batch(rng, specs, batch, length, vocabulary, pad_id):
    """Rows of different lengths (the longest is `length`), right-padded;
    global: the first token and, in odd rows, three "question" tokens.
    `specs` ({name: (shape, dtype)}, from the file) gives each input's type."""
    real = np.linspace(length, max(1, length // 3), batch).astype(int)
    padding = np.arange(length)[None, :] < real[:, None]
    token_ids = np.where(padding, rng.integers(3, vocabulary, (batch, length)), pad_id)
    global_mask = np.zeros((batch, length), bool)
    global_mask[:, 0] = True
    for row in range(1, batch, 2):
        global_mask[row, 1 : min(4, real[row])] = True
    features = {"token_ids": token_ids, "padding_mask": padding, "global_mask": global_mask}
    return typed_feeds(features, specs), features


def text_batch(model, path, specs):
    """The lines of `path`, tokenized and packed by `model.preprocessor`."""
    import keras

    if getattr(model, "preprocessor", None) is None:
        raise SystemExit(f"--texts needs a task model with a preprocessor; {model.name!r} has none")
    with open(path, encoding="utf-8") as file:
        texts = [line.rstrip("\n") for line in file if line.strip()]
    features = model.preprocessor(texts)
    if isinstance(features, tuple):  # an LM preprocessor makes its own labels
        features = features[0]
    features = {name: keras.ops.convert_to_numpy(value) for name, value in features.items()}
    return typed_feeds(features, specs), features


def typed_feeds(features, specs):
    """The file's inputs (`specs`: {name: (shape, dtype)}) from the model's features."""
    from keras_longformer.export.verify import input_role

    # By role, so Hugging Face names (input_ids, attention_mask, ...) work too.
    return {name: features[input_role(name, dtype)].astype(dtype) for name, (_, dtype) in specs.items()}


def max_abs_error(actual, expected, padding):
    """Largest difference over every output, at real tokens for per-token outputs."""
    import keras

    if not isinstance(expected, dict):
        expected = {next(iter(actual)): expected}
    error = 0.0
    for name, value in expected.items():
        difference = np.abs(actual[name] - keras.ops.convert_to_numpy(value))
        if difference.ndim >= 2 and difference.shape[:2] == padding.shape:
            difference = difference[padding]  # real tokens only
        error = max(error, float(np.max(difference)))
    return error


def main():
    args = parse_args()
    import tensorflow as tf

    # The Keras reference runs on the CPU (see the module docstring).
    tf.config.set_visible_devices([], "GPU")

    from keras_longformer.export import export_onnx
    from keras_longformer.export import load_keras_model
    from keras_longformer.export import onnx_session
    from keras_longformer.export.serve_bench import PreparedRun
    from keras_longformer.export.serve_bench import input_specs
    from keras_longformer.export.verify import describe_model
    from keras_longformer.timing import time_calls

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
        if report.preprocessor:
            print(f"{report.preprocessor} stays in Python: the file takes its features")
    cuda_options = {} if args.tf32 else {"use_tf32": 0}
    session = onnx_session(onnx_path, provider=args.provider, cuda_options=cuda_options)
    on_cuda = session.get_providers()[0] == "CUDAExecutionProvider"
    print(f"onnxruntime providers: {session.get_providers()}")
    if on_cuda:
        print(f"CUDA with IO binding, TF32 {'on' if args.tf32 else 'off'}")

    info = describe_model(model)
    vocabulary = info.vocabulary_size or 100
    pad_id = info.pad_token_id if info.pad_token_id is not None else 0
    specs = input_specs(onnx_path)
    rng = np.random.default_rng(0)
    print(
        f"{'length':>7} {'batch':>5} {'ort p50 ms':>11} {'ort p90 ms':>11} {'keras ms':>9} "
        f"{'max abs error':>14}"
    )
    batches = []
    for length in (int(n) for n in args.lengths.split(",")):
        if info.max_sequence_length and length > info.max_sequence_length:
            print(f"{length:>7} skipped: over max_sequence_length {info.max_sequence_length}")
            continue
        batches.append((*make_batch(rng, specs, args.batch, length, vocabulary, pad_id), ""))
    if args.texts:
        batches.append((*text_batch(model, args.texts, specs), f"  (raw text: {args.texts})"))
    worst = 0.0
    for feeds, features, note in batches:
        padding = np.asarray(features["padding_mask"]).astype(bool)
        # On CUDA the inputs are copied to the GPU here, once, not in the timed calls.
        run = PreparedRun(session, feeds)
        timing = time_calls(run, repeats=args.repeats)
        actual = run.outputs()  # on CUDA, the only copy back to the host
        start = time.perf_counter()
        expected = model(features, training=False)
        keras_seconds = time.perf_counter() - start
        error = max_abs_error(actual, expected, padding)
        worst = max(worst, error)
        if note and args.save_outputs:
            np.savez(
                args.save_outputs,
                **{f"feature_{name}": np.asarray(value) for name, value in features.items()},
                **{f"output_{name}": value for name, value in actual.items()},
            )
        print(
            f"{padding.shape[1]:>7} {padding.shape[0]:>5} {timing.median * 1e3:>11.2f} "
            f"{timing.percentile(90) * 1e3:>11.2f} {keras_seconds * 1e3:>9.1f} {error:>14.2e}{note}"
        )
    tolerance = 1e-2 if on_cuda and args.tf32 else 1e-4
    print(f"max abs error {worst:.2e} (tolerance {tolerance:g})")
    return 0 if worst <= tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
