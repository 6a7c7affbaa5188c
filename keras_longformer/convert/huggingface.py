"""Hugging Face Longformer checkpoints -> Keras, with exact parity.

Three pieces, each in its own file and small enough to read at once:
- `huggingface_config.py`: one pure function from Hugging Face's
  `config.json` dict to `LongformerBackbone` arguments, with transformers'
  own defaults for the keys a checkpoint leaves out;
- `checkpoint_tensors.py`: safe loading only (the safetensors package's
  memory-mapped reader, a legacy `.bin` only through
  `torch.load(weights_only=True)`), one tensor at a time;
- `weight_table.py`: one list of `(Keras variable, HF key, transform)`,
  which `from_huggingface` (here) walks, checking every key and shape.
"""

import os
import warnings

import numpy as np

from keras_longformer.convert.checkpoint_tensors import load_state_dict
from keras_longformer.convert.huggingface_config import backbone_config_from_huggingface
from keras_longformer.convert.huggingface_config import read_config
from keras_longformer.convert.huggingface_config import task_config_from_huggingface
from keras_longformer.convert.weight_table import POOLER_KEYS
from keras_longformer.convert.weight_table import TASKS_WITH_HEADS
from keras_longformer.convert.weight_table import weight_table

# Hugging Face class name -> the `task` of `from_huggingface`.
ARCHITECTURES = {
    "LongformerModel": "backbone",
    "LongformerForMaskedLM": "masked_lm",
    "LongformerForSequenceClassification": "classifier",
    "LongformerForTokenClassification": "token_classifier",
    "LongformerForQuestionAnswering": "question_answering",
}
TASKS = ("backbone", "auto") + tuple(sorted(TASKS_WITH_HEADS))
# Buffers some checkpoints hold that are not weights.
IGNORED_KEYS = ("embeddings.position_ids",)
_PREFIX = "longformer."

__all__ = [
    "ARCHITECTURES",
    "TASKS",
    "backbone_config_from_huggingface",
    "from_huggingface",
    "load_state_dict",
    "weight_table",
]


def _tied_keys(prefix):
    """Tied copies a masked-LM checkpoint may hold: key -> the key it must
    equal (its encoder's keys under `prefix`: "longformer.", "roberta.")."""
    return {
        "lm_head.decoder.weight": prefix + "embeddings.word_embeddings.weight",
        "lm_head.decoder.bias": "lm_head.bias",
    }


def _task_from_architectures(hf_config):
    for architecture in hf_config.get("architectures") or []:
        if architecture in ARCHITECTURES:
            return ARCHITECTURES[architecture]
    return "backbone"


def _build_model(task, backbone_kwargs, hf_config, dtype):
    from keras_longformer import models

    backbone = models.LongformerBackbone(**backbone_kwargs, dtype=dtype)
    if task == "backbone":
        return backbone
    if task == "masked_lm":
        return models.LongformerMaskedLM(backbone, dtype=dtype)
    if task == "question_answering":
        return models.LongformerQuestionAnswerer(backbone, dtype=dtype)
    head = task_config_from_huggingface(hf_config)
    if task == "classifier":
        return models.LongformerTextClassifier(backbone, **head, dtype=dtype)
    return models.LongformerTokenClassifier(backbone, **head, dtype=dtype)


def _check_keys(state, table, task, prefix, path):
    """Every key the table needs is there, and every key is used: before any work."""
    needed = {key for _, key, _ in table}
    optional = {prefix + key for key in POOLER_KEYS} if task == "backbone" else set()
    for variable, key, _ in table:
        if key not in state and key not in optional:
            raise ValueError(
                f"Missing key `{key}` in the checkpoint at {path} (needed for "
                f"Keras weight `{variable.path}`)."
            )
    tied = set(_tied_keys(prefix)) if task == "masked_lm" else set()
    unexpected = [
        key
        for key in state
        if key not in needed
        and key not in tied
        and (task != "backbone" or key.startswith(prefix))
    ]
    if unexpected:
        raise ValueError(
            f"Unexpected key{'s' if len(unexpected) > 1 else ''} in the checkpoint "
            f"at {path}: " + ", ".join(f"`{k}`" for k in sorted(unexpected))
        )
    return sorted(optional - set(state))


def _check_tied(state, hf_config, path, prefix):
    """A masked LM's decoder must be the token embeddings (Keras ties them)."""
    for key, target in _tied_keys(prefix).items():
        if key not in state or target not in state:
            continue
        copy, original = np.asarray(state[key]), np.asarray(state[target])
        if copy.shape != original.shape or not np.array_equal(copy, original):
            difference = (
                f"max abs difference {np.max(np.abs(copy.astype('float64') - original)):.3g}"
                if copy.shape == original.shape
                else f"shapes {copy.shape} and {original.shape}"
            )
            raise ValueError(
                f"`{key}` is not tied to `{target}` in the checkpoint at {path} "
                f"({difference}); LongformerMaskedLM ties its decoder to the token "
                "embeddings, so an untied decoder cannot be loaded. Received: "
                f"tie_word_embeddings={hf_config.get('tie_word_embeddings', True)!r}"
            )


def assign_rows(table, state, path):
    """Assigns every `(variable, key, transform)` row from the checkpoint
    `state`, one tensor at a time, each shape checked."""
    for variable, key, transform in table:
        array = state[key]
        try:
            value = transform(array, variable)
        except ValueError:  # a reshape to the Keras layout is impossible
            value = None
        if value is None or tuple(value.shape) != tuple(variable.shape):
            raise ValueError(
                f"Shape mismatch for `{key}`: the checkpoint at {path} holds "
                f"{tuple(array.shape)}, but Keras weight `{variable.path}` is "
                f"{tuple(variable.shape)} (config.json sets the Keras shapes)."
            )
        variable.assign(value.astype(variable.dtype))


def assign_checkpoint(model, task, state, keys, table, prefix, hf_config, path):
    """Checks every key of `table` against the checkpoint, then assigns them.

    Every key and the tied decoder are checked before any weight is read;
    weights are then read and assigned one at a time (never a second copy
    of the checkpoint), each shape checked. A pooler the checkpoint lacks
    stays random, with a warning.
    """
    missing_pooler = _check_keys({key: None for key in keys}, table, task, prefix, path)
    if task == "masked_lm":
        _check_tied(state, hf_config, path, prefix)
    assign_rows([row for row in table if row[1] not in missing_pooler], state, path)
    if missing_pooler:
        warnings.warn(
            f"The checkpoint at {path} has no pooler ({', '.join(missing_pooler)}), "
            "as `LongformerFor*` checkpoints: `pooled_output` is randomly "
            "initialised. `sequence_output` is exact.",
            stacklevel=3,
        )


def from_huggingface(path, *, task="backbone", dtype=None):
    """Loads a local Hugging Face Longformer checkpoint into Keras.

    `path` is a directory with `config.json` and `model.safetensors` (or a
    legacy `pytorch_model.bin`, read only with
    `torch.load(weights_only=True)`), as written by `save_pretrained` for
    `LongformerModel` or any `LongformerFor*` class. Nothing is downloaded.
    Weights are read one at a time from the memory-mapped file, so the
    conversion never holds a second copy of the checkpoint.

    Everything is checked before any weight is read: the config (keys left
    out take transformers' `LongformerConfig` defaults; those that size
    the network are required), every weight file's header, that every
    Keras weight finds its key and every key of the converted part is
    used. Each failure is a one-line error naming the file or key and what
    it holds. With `task="backbone"` the head of a `LongformerFor*`
    checkpoint is left out; those classes save no pooler, so the pooler
    keeps its random initialisation (with a warning).

    Args:
        path: directory of the checkpoint.
        task: "backbone" (default) returns a `LongformerBackbone`; "auto"
            builds the model of the checkpoint's class (from
            `architectures` in `config.json`); or one of "masked_lm"
            (`LongformerMaskedLM`), "classifier" (`LongformerTextClassifier`),
            "token_classifier" (`LongformerTokenClassifier`),
            "question_answering" (`LongformerQuestionAnswerer`).
        dtype: optional dtype policy of the Keras model.

    Returns:
        The Keras model, weights in place, in inference mode (call it with
        `training=False`, the default, for Hugging Face's `eval()` outputs).

    Raises:
        FileNotFoundError: no `config.json` or no weight file.
        ValueError: a bad `config.json` (invalid JSON, a missing key, a
            `model_type` other than longformer, `max_position_embeddings`
            too small), a truncated or corrupt weight file, a task head
            asked of a bare `LongformerModel`, an untied masked-LM decoder,
            a missing, unexpected or mis-shaped key.

    Example:

    >>> backbone = from_huggingface("longformer-base-4096/")
    >>> backbone.window  # attention_window=512 in config.json
    256
    """
    if task not in TASKS:
        raise ValueError(f"`task` must be one of {TASKS}. Received: task={task!r}")
    path = os.fspath(path)
    hf_config = read_config(path)
    try:
        backbone_kwargs = backbone_config_from_huggingface(hf_config)
    except ValueError as error:
        raise ValueError(f"{os.path.join(path, 'config.json')}: {error}") from None
    state = load_state_dict(path)
    keys = [k for k in state if k.removeprefix(_PREFIX) not in IGNORED_KEYS]
    prefixed = any(key.startswith(_PREFIX) for key in keys)
    prefix = _PREFIX if prefixed else ""
    if task == "auto":
        task = _task_from_architectures(hf_config)
    if task != "backbone" and not prefixed:
        raise ValueError(
            f"task={task!r} needs a `LongformerFor*` checkpoint (keys under "
            f"'{_PREFIX}' plus the head), but {path} holds a bare LongformerModel "
            f"(architectures={hf_config.get('architectures')!r}); use task='backbone'."
        )

    model = _build_model(task, backbone_kwargs, hf_config, dtype)
    assign_checkpoint(model, task, state, keys, weight_table(model, task, prefix), prefix, hf_config, path)
    # A task gets the preprocessor of the directory's tokenizer files, if any.
    from keras_longformer.models.huggingface_preprocessing import attach_huggingface_preprocessor

    return attach_huggingface_preprocessor(model, path)
