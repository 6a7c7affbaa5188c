"""`export_led_onnx`: an `LEDSeq2SeqLM` as an encoder and a cached decoder, verified against Keras."""

import dataclasses
import json
import os
import time

import numpy as np

from keras_longformer.export import files as files_lib
from keras_longformer.export import led_graphs
from keras_longformer.export import verify as verify_lib
from keras_longformer.export.conversion import io_dims
from keras_longformer.export.errors import ExportError
from keras_longformer.export.errors import one_line
from keras_longformer.export.inputs import default_lengths
from keras_longformer.export.inputs import make_inputs
from keras_longformer.export.led_generation import DECODER_FILENAME
from keras_longformer.export.led_generation import ENCODER_FILENAME
from keras_longformer.export.led_generation import GENERATION_FILENAME
from keras_longformer.export.led_generation import LEDOnnxGenerator
from keras_longformer.export.model_info import describe_model

# The global patterns of the verification (the sweep's, but "middle").
PATTERNS = ("none", "first", "many")
# Hugging Face's LED: decoder start and end `</s>`, pad `<pad>`.
_LED_TOKEN_IDS = {"start": 2, "end": 2, "pad": 1}
TOLERANCE = 1e-4


@dataclasses.dataclass
class LEDExportReport:
    """What `export_led_onnx` wrote and how it was checked.

    Attributes:
        directory: the export's directory.
        opset: the ONNX opset.
        encoder, decoder: `(inputs, outputs)` of each file: name ->
            `{"dims": [...], "dtype": ...}`.
        rows: one `VerificationRow` per checked case (encoder length and
            global pattern): the worst error of the encoder's outputs and
            of the decoder's logits along a greedy generation, against
            Keras; `ort_seconds` is the whole generation's.
        verified: whether verification ran and passed.
        generation: the `generation.json` written.
    """

    directory: str
    opset: int
    encoder: tuple
    decoder: tuple
    generation: dict
    rows: list = dataclasses.field(default_factory=list)
    verified: bool = False

    @property
    def failures(self):
        return [row for row in self.rows if not row.ok]

    @property
    def max_abs_error(self):
        return max((row.max_abs_error for row in self.rows), default=None)

    def table(self):
        lines = [f"LED ONNX pair: {self.directory} (opset {self.opset})"]
        for title, (inputs, outputs) in (("encoder.onnx", self.encoder), ("decoder.onnx", self.decoder)):
            lines.append(f"{title}:")
            for kind, specs in (("in ", inputs), ("out", outputs)):
                for name, spec in specs.items():
                    dims = "[" + ", ".join(str(d) for d in spec["dims"]) + "]"
                    lines.append(f"  {kind} {name:<26} {dims} {spec['dtype']}")
        if self.rows:
            lines.append(f"verification against Keras (max abs error <= {TOLERANCE:g}): {len(self.rows)} cases, "
                         f"{len(self.rows) - len(self.failures)} ok")
            lines.append(verify_lib.format_rows(self.rows))
        else:
            lines.append("verification: not run")
        return "\n".join(lines)

    def __str__(self):
        return self.table()


def export_led_onnx(lm, directory, *, opset=17, verify=True, lengths=None, new_tokens=6, overwrite=False):
    """Exports an `LEDSeq2SeqLM` as `encoder.onnx` and `decoder.onnx`.

    The layout of Hugging Face's seq2seq exports: the encoder runs once per
    document (and returns every decoder layer's cross-attention keys and
    values), the decoder once per step with a self-attention cache (see
    `export.led_graphs` for the inputs and outputs). `generation.json`
    holds the decoder prompt, end and pad ids and the maximum lengths, so
    `LEDOnnxGenerator(directory)` generates with onnxruntime alone.

    Unless `verify=False`, both files pass `onnx.checker` and, at every
    encoder length of the sweep (1, 2, window +- 1, a long one; or
    `lengths`) with no, the first and many global tokens, in batches
    whose rows have different padding: the encoder's outputs, and the
    decoder's logits at every step of a greedy generation of `new_tokens`
    tokens in onnxruntime, are compared with Keras (the decoder's with
    the model's uncached, teacher-forced logits on the tokens
    onnxruntime chose), max abs error <= 1e-4.

    The directory is written beside its final name and renamed into place
    once verified: a failed or interrupted export leaves nothing, and an
    existing directory is kept unless `overwrite`.

    Args:
        lm: a float32 `LEDSeq2SeqLM`, or a path to its `.keras` file.
        directory: the directory to write; its parent must exist.
        opset: ONNX opset, 13 to the highest tf2onnx converts (18).
        verify: whether to verify against Keras.
        lengths: optional encoder lengths to verify at.
        new_tokens: int >= 1, tokens generated per verified case.
        overwrite: whether to replace an existing `directory`.

    Returns:
        An `LEDExportReport`.

    Raises:
        ExportError: a graph did not convert, load or match Keras.
        ValueError, TypeError, FileExistsError, FileNotFoundError: bad
            arguments, before any work.

    Example:

    >>> report = export_led_onnx(lm, "led_onnx")
    >>> tokens = LEDOnnxGenerator("led_onnx").generate(ids, padding, global_mask)
    """
    from keras_longformer.export.loading import load_keras_model
    from keras_longformer.export.onnx import _check_backend
    from keras_longformer.export.onnx import refuse_unconverted

    _check_backend()
    if isinstance(lm, (str, os.PathLike)):
        lm = load_keras_model(lm)
    _check_arguments(lm, opset, new_tokens)
    target = _checked_target(directory, overwrite)
    lengths = _checked_lengths(lm, lengths)
    generation = generation_config(lm)
    with files_lib.staging_directory(target) as staging:
        protos = {}
        for filename, graph in ((ENCODER_FILENAME, led_graphs.encoder_graph),
                                (DECODER_FILENAME, led_graphs.decoder_graph)):
            protos[filename] = refuse_unconverted(graph(lm, opset), opset, f"these ops of {filename}")
            files_lib.save(protos[filename], os.path.join(staging, filename), external_data=False)
        with open(os.path.join(staging, GENERATION_FILENAME), "w") as handle:
            json.dump(generation, handle, indent=2)
        report = LEDExportReport(directory=target, opset=opset, encoder=io_dims(protos[ENCODER_FILENAME]),
                                 decoder=io_dims(protos[DECODER_FILENAME]), generation=generation)
        if verify:
            report.rows = _verify(lm, staging, lengths or default_lengths(describe_model(lm)), new_tokens)
            if report.failures:
                raise ExportError(
                    f"The ONNX pair differs from Keras in {len(report.failures)} of {len(report.rows)} cases; "
                    f"nothing written to {target!r}\n{report.table()}", report,
                )
            report.verified = True
        files_lib.publish_directory(staging, target, overwrite)
    return report


def generation_config(lm):
    """`generation.json`: the preprocessor's decoder prompt (`</s> <s>`) and
    ids, or Hugging Face LED's (`</s>`, end `</s>`, pad `<pad>`) without one."""
    backbone = lm.backbone
    tokenizer = getattr(getattr(lm, "preprocessor", None), "tokenizer", None)
    if tokenizer is not None:
        prompt = [tokenizer.end_token_id, tokenizer.start_token_id]
        end, pad = tokenizer.end_token_id, tokenizer.pad_token_id
    else:
        prompt, end, pad = [_LED_TOKEN_IDS["start"]], _LED_TOKEN_IDS["end"], _LED_TOKEN_IDS["pad"]
    return {
        "decoder_prompt": [int(i) for i in prompt], "end_token_id": int(end), "pad_token_id": int(pad),
        "max_encoder_sequence_length": backbone.max_encoder_sequence_length,
        "max_decoder_sequence_length": backbone.max_decoder_sequence_length,
    }


def _check_arguments(lm, opset, new_tokens):
    from keras_longformer.export.onnx import check_opset
    from keras_longformer.models import LEDSeq2SeqLM

    if not isinstance(lm, LEDSeq2SeqLM):
        raise TypeError(f"`lm` must be an LEDSeq2SeqLM or a path to one. Received: {type(lm).__name__}")
    if lm.compute_dtype != "float32" or lm.variable_dtype != "float32":
        raise ValueError(f"The LED pair is exported from a float32 model. Received: dtype={lm.dtype_policy.name}")
    check_opset(opset)
    if isinstance(new_tokens, bool) or not isinstance(new_tokens, int) or new_tokens < 1:
        raise ValueError(f"`new_tokens` must be an int >= 1. Received: new_tokens={new_tokens!r}")


def _checked_target(directory, overwrite):
    target = os.path.abspath(os.fspath(directory))
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"The parent of `directory` does not exist: {parent!r}")
    if os.path.lexists(target):
        if not os.path.isdir(target):
            raise FileExistsError(f"`directory` is a file. Received: directory={target!r}")
        if not overwrite:
            raise FileExistsError(f"{target!r} already exists (pass overwrite=True / --force to replace it)")
    return target


def _checked_lengths(lm, lengths):
    if lengths is None:
        return None
    limit = lm.backbone.max_encoder_sequence_length
    lengths = list(lengths)
    if not lengths or any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= limit
                          for n in lengths):
        raise ValueError(f"`lengths` must be ints from 1 to max_encoder_sequence_length={limit}. "
                         f"Received: lengths={lengths!r}")
    return sorted(set(int(n) for n in lengths))


def _verify(lm, staging, lengths, new_tokens):
    import onnx

    for filename in (ENCODER_FILENAME, DECODER_FILENAME):
        try:
            onnx.checker.check_model(os.path.join(staging, filename), full_check=True)
        except Exception as error:
            raise ExportError(f"onnx.checker rejected {filename}: {one_line(error)}") from error
    try:
        generator = LEDOnnxGenerator(staging, provider="cpu")
    except Exception as error:
        raise ExportError(f"onnxruntime cannot load the pair: {one_line(error)}") from error
    info = describe_model(lm)
    specs = {name: ((None, None), "int32") for name in led_graphs.ENCODER_INPUTS}
    max_length = min(len(generator.config["decoder_prompt"]) + new_tokens,
                     generator.config["max_decoder_sequence_length"])
    rng = np.random.default_rng(0)
    rows = []
    for length in lengths:
        for pattern in PATTERNS:
            inputs = make_inputs(specs, length, pattern, info, rng=rng)
            rows.append(_compare(lm, generator, inputs, max_length, length, pattern))
    return rows


def _compare(lm, generator, inputs, max_length, length, pattern):
    """One row: the encoder's outputs, and the logits of a greedy
    onnxruntime generation against Keras's uncached forward pass."""
    from keras import ops

    ids, padding, global_mask = (inputs[name] for name in led_graphs.ENCODER_INPUTS)
    real = padding.astype(bool)
    hidden, cross_cache = generator.encode(ids, padding, global_mask)
    expected_hidden = ops.convert_to_numpy(lm.call_encoder(ids, padding, global_mask))
    start = time.perf_counter()
    tokens, logits = generator.generate(ids, padding, global_mask, max_length=max_length, stop_token_ids=(),
                                        return_logits=True)
    seconds = time.perf_counter() - start
    prompt = len(generator.config["decoder_prompt"])
    expected_logits = ops.convert_to_numpy(lm({
        "encoder_token_ids": ids, "encoder_padding_mask": padding, "encoder_global_mask": global_mask,
        "decoder_token_ids": tokens[:, :-1], "decoder_padding_mask": np.ones_like(tokens[:, :-1]),
    }))[:, prompt - 1:]
    expected_cross_cache = ops.convert_to_numpy(lm.call_cross_attention_cache(expected_hidden))
    error = verify_lib._max_abs_error  # inf for a shape mismatch, NaN for a NaN
    errors = {
        "encoder_hidden_states": error(expected_hidden[real], hidden[real]),
        "cross_attention_cache": error(_by_position(expected_cross_cache)[real], _by_position(cross_cache)[real]),
        "logits": error(expected_logits, logits),
    }
    worst = max(errors, key=lambda name: np.nan_to_num(errors[name], nan=np.inf))
    return verify_lib.VerificationRow(length=length, pattern=pattern, max_abs_error=errors[worst],
                                      ort_seconds=seconds, tolerance=TOLERANCE, worst_output=worst)


def _by_position(cache):
    """`[B, layers, 2, heads, S, head_dim]` as `[B, S, ...]` (to keep real positions)."""
    return np.moveaxis(cache, 4, 1)


def write_led_triton_repository(directory, repository, *, model_name="led", max_batch_size=8,
                                instance_kind="gpu", overwrite=False):
    """Writes an `export_led_onnx` directory as two models of a Triton repository.

    `repository/{model_name}_encoder` (dynamic batching up to
    `max_batch_size` documents of one length) and
    `repository/{model_name}_decoder` (`max_batch_size: 0`: the cache index
    is one per call, so requests are not batched together); each written
    by `write_triton_repository`, so each appears whole or not at all. A
    client runs the loop of `LEDOnnxGenerator.generate` against them, with
    the ids of `generation.json`.

    Returns:
        `(encoder_model_directory, decoder_model_directory)`.
    """
    from keras_longformer.export.triton import write_triton_repository

    directory = os.fspath(directory)
    paths = [os.path.join(directory, name) for name in (ENCODER_FILENAME, DECODER_FILENAME)]
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No {os.path.basename(path)} in `directory` (an export_led_onnx "
                                    f"directory). Received: directory={directory!r}")
    return tuple(
        write_triton_repository(path, repository, model_name=f"{model_name}_{part}", max_batch_size=batch,
                                instance_kind=instance_kind, overwrite=overwrite)
        for path, part, batch in zip(paths, ("encoder", "decoder"), (max_batch_size, 0))
    )
