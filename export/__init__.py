"""ONNX export of keras_longformer models (installed as `keras_longformer.export`).

- `export_onnx(model, output_path, ...)`: converts a Keras model (or a
  `.keras` file) to ONNX with named inputs/outputs and symbolic `batch` and
  `sequence` dims, verifies it against Keras across lengths and global
  patterns, and writes it atomically. Returns an `ExportReport`.
  `precision="float16"` or `"int8"` for serving; `input_names="huggingface"`
  for a Hugging Face tokenizer's output.
- `onnx_session(path, provider="auto")`: an onnxruntime session on CUDA
  when it can really be created, else CPU (saying why in one line).
- `export_led_onnx(lm, directory)`: an `LEDSeq2SeqLM` as `encoder.onnx` and
  a cached `decoder.onnx`, verified along greedy generations;
  `LEDOnnxGenerator(directory)` summarizes with onnxruntime alone;
  `write_led_triton_repository` serves the pair.
- `read_metadata`, `write_triton_repository`, `benchmark_serving`.

Modules by job: conversion (tf2onnx), graph_rewrites, precision, files
(staging, external data, atomic publish), metadata, verify (the sweep),
inputs and model_info (what it feeds), session, dtypes, structure, report.
"""

from keras_longformer.export.errors import ExportError
from keras_longformer.export.errors import UnknownLayerError
from keras_longformer.export.led import LEDExportReport
from keras_longformer.export.led import export_led_onnx
from keras_longformer.export.led import write_led_triton_repository
from keras_longformer.export.led_generation import LEDOnnxGenerator
from keras_longformer.export.loading import load_keras_model
from keras_longformer.export.metadata import read_metadata
from keras_longformer.export.onnx import export_onnx
from keras_longformer.export.precision import PRECISIONS
from keras_longformer.export.report import ExportReport
from keras_longformer.export.session import ProviderUnavailableError
from keras_longformer.export.session import onnx_session
from keras_longformer.export.verify import VerificationRow
from keras_longformer.export.serve_bench import ServeBenchRow
from keras_longformer.export.serve_bench import benchmark_serving
from keras_longformer.export.triton import write_triton_repository

__all__ = [
    "LEDExportReport",
    "LEDOnnxGenerator",
    "export_led_onnx",
    "write_led_triton_repository",
    "ServeBenchRow",
    "benchmark_serving",
    "read_metadata",
    "write_triton_repository",
    "ExportError",
    "PRECISIONS",
    "ExportReport",
    "ProviderUnavailableError",
    "UnknownLayerError",
    "VerificationRow",
    "export_onnx",
    "load_keras_model",
    "onnx_session",
]
