"""`keras-longformer convert` and `convert-to-long`: checkpoints to Keras files.

    keras-longformer convert HF_DIR OUT [--task auto] [--force]
    keras-longformer convert-to-long SRC OUT [--max-length 4096] [--window 256] [--force]

OUT is a keras-hub preset directory, or a `.keras` file when it ends so.
Either is written whole or not at all: a `.keras` file goes to a temporary
name beside it first, a preset directory is written by `save_preset`.
"""

import os
import tempfile

from keras_longformer.cli.support import CommandError
from keras_longformer.cli.support import check_output_path


def add_convert(subparsers):
    """Adds the `convert` subcommand (Hugging Face Longformer -> Keras)."""
    parser = subparsers.add_parser(
        "convert",
        help="convert a Hugging Face Longformer or LED checkpoint to a preset directory or a .keras file",
        description="Convert a Hugging Face Longformer (or LED) checkpoint directory to a keras-hub preset "
        "directory (with its tokenizer, if the checkpoint has one), or to a .keras file when the "
        "output ends in .keras.",
    )
    parser.add_argument("checkpoint", help="Hugging Face checkpoint directory (config.json + weights)")
    parser.add_argument("output", help="the preset directory to write, or a path ending in .keras")
    from keras_longformer.convert.huggingface import TASKS

    parser.add_argument(
        "--task", default="backbone", choices=TASKS,
        help="the Keras model to build: backbone (default), auto (the checkpoint's own "
        "LongformerFor* class, from config.json's architectures), or a task head",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing output")
    parser.set_defaults(run=_run_convert)


def add_convert_to_long(subparsers):
    """Adds the `convert-to-long` subcommand (the paper's RoBERTa recipe)."""
    parser = subparsers.add_parser(
        "convert-to-long",
        help="make a long Longformer from a short RoBERTa-family model",
        description="The Longformer paper's recipe: a Hugging Face RoBERTa, XLM-RoBERTa or "
        "CamemBERT checkpoint directory (Model or ForMaskedLM), or a keras-hub RoBERTa preset "
        "directory, becomes a Longformer of --max-length tokens (a BART directory becomes an LED "
        "whose encoder reads --max-length tokens): positions tiled, every layer "
        "windowed, global projections copied from the local ones. Writes a preset directory "
        "(with the tokenizer, if the source has one) or a .keras file.",
    )
    parser.add_argument("source", help="Hugging Face checkpoint or keras-hub preset directory")
    parser.add_argument("output", help="the preset directory to write, or a path ending in .keras")
    parser.add_argument(
        "--max-length", type=int, default=4096,
        help="positions of the long model (default 4096), above the source's",
    )
    parser.add_argument(
        "--window", type=_windows, default=256,
        help="one-sided window (default 256, the paper's 512 two-sided), or one per layer: 64,128,...",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing output")
    parser.set_defaults(run=_run_convert_to_long)


def _windows(text):
    """`--window`: "256" -> 256, "64,128" -> [64, 128] (argparse reports a ValueError)."""
    values = [int(part) for part in text.split(",")]
    return values[0] if len(values) == 1 else values


def _run_convert(args):
    if not os.path.isdir(args.checkpoint):
        raise CommandError(f"not a checkpoint directory: {args.checkpoint}")
    check_output_path(args.output, args.force)
    from keras_longformer.convert import from_huggingface
    from keras_longformer.convert import led_from_huggingface
    from keras_longformer.convert.huggingface_config import checkpoint_model_type

    if checkpoint_model_type(args.checkpoint) == "led":
        if args.task not in ("backbone", "auto"):
            raise CommandError(f"an LED checkpoint converts with --task backbone or auto; received --task {args.task}")
        return _write(args, led_from_huggingface(args.checkpoint, task=args.task))
    return _write(args, from_huggingface(args.checkpoint, task=args.task))


def _run_convert_to_long(args):
    if not os.path.isdir(args.source):
        raise CommandError(f"not a checkpoint or preset directory: {args.source}")
    check_output_path(args.output, args.force)
    from keras_longformer.convert import convert_to_long

    # A bad argument or source is a ValueError naming it, before anything is written.
    model = convert_to_long(args.source, max_sequence_length=args.max_length, window=args.window)
    return _write(args, model)


def _write(args, model):
    """Writes `model` to `args.output` whole, then reports it."""
    if not args.output.endswith(".keras"):  # a keras-hub preset directory
        from keras_longformer.models.preset_files import save_preset

        save_preset(model, args.output, overwrite=args.force)
    else:
        handle, temporary = tempfile.mkstemp(
            prefix=f".{os.path.basename(args.output)}.",
            suffix=".tmp.keras",
            dir=os.path.dirname(os.path.abspath(args.output)),
        )
        os.close(handle)
        try:
            model.save(temporary)
            os.replace(temporary, args.output)
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
    out = args.reporter
    out.record(path=args.output, model=type(model).__name__, parameters=model.count_params())
    out.say(f"wrote {args.output} ({type(model).__name__}, {model.count_params():,} parameters)")
    return 0
