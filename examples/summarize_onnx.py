"""Summarize long documents with an LED served by onnxruntime alone.

Exports an `LEDSeq2SeqLM` as `encoder.onnx` and a cached `decoder.onnx`
(`keras_longformer.export.export_led_onnx`, verified against Keras along
greedy generations), then generates with `LEDOnnxGenerator`: numpy and
onnxruntime only, the encoder once per document, one decoder call per new
token. Every summary is checked token for token against Keras's
`generate` (greedy), and the tokens per second of both are printed.

A random LED (the default) repeats one token: pass a trained one with
`--model` for summaries worth reading. With a model that has a preprocessor (converted from Hugging Face with its
tokenizer files, or a preset), `--texts` are tokenized by it and the
summaries detokenized; without one, random documents of token ids are used.

Run:
    python examples/summarize_onnx.py                         # a small random LED
    python examples/summarize_onnx.py --model led.keras --texts docs.txt
    python examples/summarize_onnx.py --model hf_led_dir --provider cuda
"""

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="LEDSeq2SeqLM .keras file, or a Hugging Face LED directory "
                        "(default: a small random LED)")
    parser.add_argument("--out", help="directory for the ONNX pair (default: a temporary one)")
    parser.add_argument("--texts", help="UTF-8 file of documents, one per line (needs a --model "
                        "with a preprocessor)")
    parser.add_argument("--length", type=int, default=600, help="tokens per random document")
    parser.add_argument("--batch", type=int, default=2, help="random documents")
    parser.add_argument("--max-length", type=int, default=24, help="longest summary, prompt included")
    parser.add_argument("--provider", choices=("auto", "cuda", "cpu"), default="auto")
    parser.add_argument("--verify-lengths", default=None,
                        help="comma-separated encoder lengths the export is verified at (default: its sweep)")
    return parser.parse_args(argv)


def load_model(path):
    import keras

    from keras_longformer.models import LEDBackbone
    from keras_longformer.models import LEDSeq2SeqLM

    if path is None:
        keras.utils.set_random_seed(0)
        return LEDSeq2SeqLM(LEDBackbone(vocabulary_size=500, num_layers=2, num_heads=4, hidden_dim=64,
                                        intermediate_dim=128, window=32, max_encoder_sequence_length=1024,
                                        max_decoder_sequence_length=64))
    if os.path.isdir(path):
        from keras_longformer.convert.led import led_from_huggingface

        return led_from_huggingface(path, task="seq2seq_lm")
    return keras.saving.load_model(path)


def documents(lm, args):
    """`(ids, padding_mask, global_mask)` of the documents: tokenized texts
    (`<s>` global, as the preprocessor sets it) or random ids (first global)."""
    if args.texts:
        if lm.preprocessor is None:
            sys.exit(f"--texts needs a --model with a preprocessor. Received: --model={args.model!r}")
        with open(args.texts, encoding="utf-8") as handle:
            texts = [line.strip() for line in handle if line.strip()]
        features = lm.preprocessor.generate_preprocess(texts)
        return tuple(np.asarray(features[name]) for name in
                     ("encoder_token_ids", "encoder_padding_mask", "encoder_global_mask"))
    rng = np.random.default_rng(0)
    ids = rng.integers(3, lm.backbone.vocabulary_size, (args.batch, args.length)).astype("int32")
    padding = np.ones_like(ids)
    padding[1:, args.length * 2 // 3:] = 0  # rows of different lengths
    ids[padding == 0] = 1
    global_mask = np.zeros_like(ids)
    global_mask[:, 0] = 1
    return ids, padding, global_mask


def keras_summaries(lm, ids, padding, global_mask, prompt, stops, pad, max_length):
    features = {"encoder_token_ids": ids, "encoder_padding_mask": padding, "encoder_global_mask": global_mask,
                "decoder_token_ids": np.full((len(ids), max_length), pad, "int32"),
                "decoder_padding_mask": np.zeros((len(ids), max_length), bool)}
    features["decoder_token_ids"][:, :len(prompt)] = prompt
    features["decoder_padding_mask"][:, :len(prompt)] = True
    lm.compile(sampler="greedy")
    out = lm.generate(features, stop_token_ids=stops or None)
    tokens, mask = np.asarray(out["decoder_token_ids"]), np.asarray(out["decoder_padding_mask"]).astype(bool)
    return [tokens[row][mask[row]] for row in range(len(ids))]


def main(argv=None):
    args = parse_args(argv)
    from keras_longformer.export import LEDOnnxGenerator
    from keras_longformer.export import export_led_onnx

    lm = load_model(args.model)
    out = args.out or os.path.join(tempfile.mkdtemp(), "led_onnx")
    lengths = [int(n) for n in args.verify_lengths.split(",")] if args.verify_lengths else None
    report = export_led_onnx(lm, out, lengths=lengths, overwrite=True)
    print(f"exported and verified: {out} ({len(report.rows)} cases, max abs error {report.max_abs_error:.2e})")
    ids, padding, global_mask = documents(lm, args)
    generator = LEDOnnxGenerator(out, provider=args.provider)
    config = generator.config
    # A random model's summaries run to --max-length: its end token means nothing.
    stops = [config["end_token_id"]] if args.model else []
    start = time.perf_counter()
    tokens = generator.generate(ids, padding, global_mask, max_length=args.max_length, stop_token_ids=stops)
    onnx_seconds = time.perf_counter() - start
    start = time.perf_counter()
    expected = keras_summaries(lm, ids, padding, global_mask, config["decoder_prompt"], stops,
                               config["pad_token_id"], args.max_length)
    keras_seconds = time.perf_counter() - start
    generated = 0
    for row, reference in enumerate(expected):
        summary = tokens[row][: len(reference)]
        if not np.array_equal(summary, reference) or (tokens[row][len(reference):] != config["pad_token_id"]).any():
            sys.exit(f"row {row}: onnxruntime {tokens[row].tolist()} != Keras {reference.tolist()}")
        generated += len(reference) - len(config["decoder_prompt"])
        shown = summary.tolist()
        if lm.preprocessor is not None:
            shown = lm.preprocessor.generate_postprocess({"decoder_token_ids": summary[None],
                                                         "decoder_padding_mask": np.ones((1, len(summary)), bool)})
        print(f"document {row} ({int(padding[row].sum())} tokens): {shown}")
    print(f"onnxruntime summaries equal Keras's, token for token ({generated} generated tokens)")
    print(f"onnxruntime ({generator.decoder.get_providers()[0]}): {generated / onnx_seconds:.0f} tokens/s; "
          f"Keras generate: {generated / keras_seconds:.0f} tokens/s (first call, compilation included)")


if __name__ == "__main__":
    main()
