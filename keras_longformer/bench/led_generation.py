"""`keras-longformer bench --led`: summaries per second of an LED, ours against Hugging Face's.

One random Hugging Face `LEDForConditionalGeneration` (LED-base's shape by
default: 6 + 6 layers, hidden 768, 12 heads, window 512 one-sided, i.e.
`attention_window=1024`) is converted to our `LEDSeq2SeqLM` and exported
as the ONNX pair, so the three run the same weights in one process:

- `huggingface`: `generate` (greedy, its key/value cache), PyTorch CPU;
- `keras`: our `generate` (greedy, the encoder once, a decoder cache),
  on the Keras backend of the run;
- `onnxruntime`: `LEDOnnxGenerator` (encoder.onnx once, decoder.onnx per
  token), CPU provider.

Each writes exactly `new_tokens` tokens (no early stop) for a batch of
documents of each length, with `<s>` global. A row has the median seconds
of a whole generation, the encoder-included tokens per second, and the
cost of one more token: `(seconds(new_tokens) - seconds(1)) / (new_tokens
- 1)`, the decoder step alone. `tokens_equal` says whether the three chose
the same tokens (greedy on the same weights). Ratios are Hugging Face's
seconds over ours.
"""

import datetime
import json
import os
import platform
import tempfile

import numpy as np

from keras_longformer.timing import time_calls

SYSTEMS = ("huggingface", "keras", "onnxruntime")
FULL = dict(layers=6, hidden=768, heads=12, window=512, vocabulary=50265, lengths=[1024, 4096], new_tokens=64)
QUICK = dict(layers=2, hidden=64, heads=2, window=16, vocabulary=1000, lengths=[64, 200], new_tokens=8)
START, END, PAD = 2, 2, 1


def hf_led(config, directory):
    """A random `LEDForConditionalGeneration` of `config`, saved to `directory`."""
    import torch
    from transformers import LEDConfig
    from transformers import LEDForConditionalGeneration

    torch.manual_seed(0)
    hf_config = LEDConfig(
        vocab_size=config["vocabulary"], d_model=config["hidden"], encoder_layers=config["layers"],
        decoder_layers=config["layers"], encoder_attention_heads=config["heads"],
        decoder_attention_heads=config["heads"], encoder_ffn_dim=4 * config["hidden"],
        decoder_ffn_dim=4 * config["hidden"], attention_window=2 * config["window"],
        # Hugging Face pads inputs to a multiple of its two-sided window.
        max_encoder_position_embeddings=-(-max(config["lengths"]) // (2 * config["window"])) * 2 * config["window"],
        max_decoder_position_embeddings=max(64, config["new_tokens"] + 2),
        pad_token_id=PAD, bos_token_id=0, eos_token_id=END, decoder_start_token_id=START,
    )
    model = LEDForConditionalGeneration(hf_config).eval()
    model.save_pretrained(directory)
    return model


def documents(config, length, rng):
    """`(ids, padding, global_mask)` `[batch, length]` int64, `<s>` global."""
    ids = rng.integers(3, config["vocabulary"], (config["batch"], length)).astype("int64")
    ids[:, 0] = 0
    global_mask = np.zeros_like(ids)
    global_mask[:, 0] = 1
    return ids, np.ones_like(ids), global_mask


def generators(model, lm, onnx_directory, provider):
    """System name -> `generate(ids, padding, global_mask, new_tokens)` returning `[B, 1 + new]` ids."""
    import torch

    from keras_longformer.export import LEDOnnxGenerator

    def huggingface(ids, padding, global_mask, new_tokens):
        with torch.no_grad():
            return model.generate(
                input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(padding),
                global_attention_mask=torch.from_numpy(global_mask), max_new_tokens=new_tokens,
                eos_token_id=None, do_sample=False, num_beams=1, use_cache=True,
                decoder_start_token_id=START, forced_bos_token_id=None, forced_eos_token_id=None,
                no_repeat_ngram_size=0,
            ).numpy()

    def keras(ids, padding, global_mask, new_tokens):
        prompt = np.full((len(ids), 1 + new_tokens), PAD, "int32")
        prompt[:, 0] = START
        out = lm.generate({
            "encoder_token_ids": ids.astype("int32"), "encoder_padding_mask": padding.astype("int32"),
            "encoder_global_mask": global_mask.astype("int32"), "decoder_token_ids": prompt,
            "decoder_padding_mask": np.arange(1 + new_tokens)[None].repeat(len(ids), 0) < 1,
        }, stop_token_ids=None)
        return np.asarray(out["decoder_token_ids"])

    onnx = LEDOnnxGenerator(onnx_directory, provider=provider)

    def onnxruntime(ids, padding, global_mask, new_tokens):
        return onnx.generate(ids, padding, global_mask, max_length=1 + new_tokens, decoder_prompt=[START],
                             stop_token_ids=())

    return {"huggingface": huggingface, "keras": keras, "onnxruntime": onnxruntime}


def median_seconds(generate, inputs, new_tokens, repeats):
    """`(median seconds, the last call's tokens)` of `repeats` timed calls
    after one untimed (Keras compiles per shape)."""
    last = []
    timing = time_calls(lambda: generate(*inputs, new_tokens), repeats=repeats, warmup=1, sync=last.append)
    return timing.median, last[-1]


def parse_led_options(args, positive):
    """The `--led` run's options from the bench's arguments (checked before any work)."""
    config = dict(QUICK if args.quick else FULL, batch=args.batch)
    for name in ("layers", "hidden", "heads", "window", "new_tokens"):
        value = getattr(args, name, None)
        if value is not None:
            positive(name.replace("_", "-"), value)
            config[name] = value
    if args.lengths is not None:
        config["lengths"] = sorted({int(n) for n in args.lengths.split(",")})
    if config["hidden"] % config["heads"]:
        raise ValueError(f"`--heads` must divide `--hidden`. Received: --hidden={config['hidden']}, "
                         f"--heads={config['heads']}")
    repeats = args.repeats if args.repeats is not None else 2 if args.quick else 3
    positive("repeats", repeats)
    return config, repeats, os.path.abspath(args.output_dir)


def run_led(config, repeats, output_dir, provider="cpu", progress=print):
    """Times the three systems at every length; writes `led_generation.json`
    and `.md` in `output_dir`; returns the report."""
    import keras

    from keras_longformer.convert.led import led_from_huggingface
    from keras_longformer.export import export_led_onnx

    started = datetime.datetime.now(datetime.timezone.utc)
    rows = []
    with tempfile.TemporaryDirectory(prefix="keras_longformer_led_bench_") as scratch:
        model = hf_led(config, os.path.join(scratch, "hf"))
        lm = led_from_huggingface(os.path.join(scratch, "hf"), task="seq2seq_lm")
        lm.compile(sampler="greedy")
        export_led_onnx(lm, os.path.join(scratch, "onnx"), lengths=[min(config["lengths"])], new_tokens=2)
        systems = generators(model, lm, os.path.join(scratch, "onnx"), provider)
        rng = np.random.default_rng(0)
        for length in config["lengths"]:
            inputs = documents(config, length, rng)
            row = dict(length=length, batch=config["batch"], new_tokens=config["new_tokens"])
            chosen = {}
            for name in SYSTEMS:
                progress(f"led bench: {name} at {length} tokens")
                full, chosen[name] = median_seconds(systems[name], inputs, config["new_tokens"], repeats)
                one, _ = median_seconds(systems[name], inputs, 1, repeats)
                row[name] = dict(seconds=full, seconds_one_token=one,
                                 tokens_per_second=config["batch"] * config["new_tokens"] / full,
                                 step_seconds=(full - one) / max(config["new_tokens"] - 1, 1))
            reference = chosen["huggingface"][:, : 1 + config["new_tokens"]]
            row["tokens_equal"] = {name: bool(np.array_equal(chosen[name][:, : 1 + config["new_tokens"]],
                                                             reference)) for name in ("keras", "onnxruntime")}
            row["speedup"] = {name: row["huggingface"]["seconds"] / row[name]["seconds"]
                              for name in ("keras", "onnxruntime")}
            rows.append(row)
    result = dict(
        date=started.isoformat(timespec="seconds"), command=command_of(config, repeats),
        config=config, repeats=repeats, backend=keras.backend.backend(),
        machine=dict(platform=platform.platform(), cpu_count=os.cpu_count()), rows=rows,
    )
    os.makedirs(output_dir, exist_ok=True)
    json_path = os.path.join(output_dir, "led_generation.json")
    with open(json_path, "w") as handle:
        json.dump(result, handle, indent=1)
    markdown_path = os.path.join(output_dir, "led_generation.md")
    with open(markdown_path, "w") as handle:
        handle.write(f"{result['date']}, `{result['command']}` ({result['backend']} backend)\n\n"
                     f"{format_markdown(rows)}\n")
    result["files"] = [json_path, markdown_path]
    return result


def command_of(config, repeats):
    flags = [f"--lengths {','.join(str(n) for n in config['lengths'])}", f"--layers {config['layers']}",
             f"--hidden {config['hidden']}", f"--heads {config['heads']}", f"--window {config['window']}",
             f"--batch {config['batch']}", f"--new-tokens {config['new_tokens']}", f"--repeats {repeats}"]
    return "keras-longformer bench --led " + " ".join(flags)


def format_markdown(rows):
    lines = ["| encoder tokens | system | generation s | tokens/s | ms per extra token | vs Hugging Face "
             "| same tokens |", "|---:|---|---:|---:|---:|---:|---|"]
    for row in rows:
        for name in SYSTEMS:
            measured = row[name]
            ratio = "1.00x" if name == "huggingface" else f"{row['speedup'][name]:.2f}x"
            same = "-" if name == "huggingface" else ("yes" if row["tokens_equal"][name] else "no")
            lines.append(f"| {row['length']:,} | {name} | {measured['seconds']:.3f} | "
                         f"{measured['tokens_per_second']:.1f} | {measured['step_seconds'] * 1e3:.1f} | "
                         f"{ratio} | {same} |")
    return "\n".join(lines)
