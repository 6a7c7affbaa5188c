"""Benchmark of Longformer attention against its peers, with limits, memory and plots.

`keras-longformer bench` (or `python -m keras_longformer.bench`) measures our
`LongformerSelfAttention` (forward, forward + backward, float32 and
`mixed_bfloat16`, and exported to onnxruntime) against Keras's
`MultiHeadAttention(sliding_window=2w + 1)` and Hugging Face's PyTorch
`LongformerSelfAttention`, with the machine's own matmul rates as the limit,
the peak resident memory of every point (each in its own process), a JSON
file and PNG plots. Modules, one job each:

- `paths`: the measured paths, their length rules and memory estimates;
- `flops`: useful FLOPs and the measured matmul rates;
- `ours`, `peers`: each path as a timed callable;
- `worker`: one measurement process; `runner`: plans and runs them;
- `memory`: peak resident memory; `report`: limits, ratios, the table;
- `plot`: the PNG plots; `cli`: arguments and the run.

`--model` measures a whole model's training step instead (forward,
backward, AdamW), ours with and without gradient checkpointing against
Hugging Face's `LongformerModel`:

- `model_paths`: its paths, configurations and useful FLOPs;
- `model_steps`: each training step as a timed callable;
- `model_worker`: one process per point, with a memory watchdog;
- `model_bench`: plan and run; `model_report`: ratios, table, plots.

Nothing heavy is imported here: the worker processes import the frameworks.
"""

from keras_longformer.bench.cli import add_arguments
from keras_longformer.bench.cli import main
from keras_longformer.bench.cli import parse_options
from keras_longformer.bench.cli import run
from keras_longformer.bench.cli import run_from_arguments

__all__ = ["add_arguments", "main", "parse_options", "run", "run_from_arguments"]
