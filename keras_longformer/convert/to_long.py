"""A long model from a short one: the paper's RoBERTa-to-Longformer recipe.

`convert_to_long` reads a RoBERTa-family model (a Hugging Face checkpoint
directory of RoBERTa, XLM-RoBERTa or CamemBERT, or a keras-hub RoBERTa
instance or preset directory) into a `LongformerBackbone` of
`max_sequence_length` positions: the source's learned position rows tiled
(position `k` holds row `k mod P`), local attention with the given window,
and global query/key/value projections copied from the local ones.
`copy_global_projections` copies them again after masked-LM training,
which never trains them (a masked LM has no global token).
"""

import json
import os
import warnings

from keras_longformer.convert import keras_hub_roberta
from keras_longformer.convert.checkpoint_tensors import load_state_dict
from keras_longformer.convert.huggingface import IGNORED_KEYS
from keras_longformer.convert.huggingface import assign_checkpoint
from keras_longformer.convert.huggingface_config import backbone_config_from_huggingface
from keras_longformer.convert.huggingface_config import checkpoint_model_type
from keras_longformer.convert.huggingface_config import read_config
from keras_longformer.convert.weight_table import weight_table

# Hugging Face model types whose network is Longformer's with full
# attention, and the class name -> task of their checkpoints.
ROBERTA_MODEL_TYPES = ("roberta", "xlm-roberta", "camembert")
ROBERTA_ARCHITECTURES = {
    f"{family}{head}": task
    for family in ("Roberta", "XLMRoberta", "Camembert")
    for head, task in (("Model", "backbone"), ("ForMaskedLM", "masked_lm"))
}
BERT_MODEL_TYPES = ("bert", "distilbert", "albert", "electra", "deberta", "deberta-v2")
_PREFIX = "roberta."


def _check_window(window):
    windows = window if isinstance(window, (list, tuple)) else [window]
    if not windows or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in windows):
        raise ValueError(
            "`window` must be an int >= 1 (one-sided: Hugging Face's "
            "attention_window=512 is window=256) or a list of them, one per layer. "
            f"Received: window={window!r}"
        )
    return list(window) if isinstance(window, (list, tuple)) else window


def _check_max_sequence_length(max_sequence_length, short_length, source):
    if isinstance(max_sequence_length, bool) or not isinstance(max_sequence_length, int):
        raise ValueError(
            f"`max_sequence_length` must be an int. Received: max_sequence_length={max_sequence_length!r}"
        )
    if max_sequence_length <= short_length:
        raise ValueError(
            f"`max_sequence_length` must be above the source's {short_length} positions "
            f"({source}). Received: max_sequence_length={max_sequence_length}"
        )


def _tiled(max_sequence_length):
    from keras_longformer.models.position_embeddings import tile_positions

    def transform(rows, variable):
        """The source's rows -> the long table `variable` (reserved rows kept)."""
        return tile_positions(rows, variable.shape[0] - max_sequence_length, max_sequence_length)

    return transform


def _build(task, backbone_kwargs, dtype):
    from keras_longformer import models

    backbone = models.LongformerBackbone(**backbone_kwargs, dtype=dtype)
    if task == "masked_lm":
        return models.LongformerMaskedLM(backbone, dtype=dtype)
    return backbone


def _huggingface_task(hf_config, path):
    architectures = hf_config.get("architectures") or []
    for architecture in architectures:
        if architecture in ROBERTA_ARCHITECTURES:
            return ROBERTA_ARCHITECTURES[architecture]
    if architectures:
        warnings.warn(
            f"{path} holds a {architectures[0]}; its encoder is converted to a "
            "LongformerBackbone and its head is left out.",
            stacklevel=4,
        )
    return "backbone"


def _huggingface_backbone_config(hf_config, config_file):
    model_type = hf_config.get("model_type")
    if model_type in BERT_MODEL_TYPES:
        raise ValueError(
            f"{config_file}: model_type={model_type!r} is BERT-family: its positions "
            "start at 0 whatever the padding and it reads token types, while "
            "LongformerEmbeddings computes RoBERTa's positions (pad_token_id + k) "
            "and reads token type 0 only. Supported: "
            f"{', '.join(ROBERTA_MODEL_TYPES)}."
        )
    if model_type == "longformer":
        raise ValueError(
            f"{config_file} is already a Longformer: load it with `from_huggingface` and "
            "lengthen it with `extend_position_embeddings`."
        )
    if model_type not in ROBERTA_MODEL_TYPES:
        raise ValueError(
            f"{config_file}: convert_to_long reads the RoBERTa family "
            f"({', '.join(ROBERTA_MODEL_TYPES)}). Received: model_type={model_type!r}"
        )
    # The same network as Longformer's with full attention: read it as one
    # (the window set here is replaced by the caller's).
    try:
        kwargs = backbone_config_from_huggingface(
            {**hf_config, "model_type": "longformer", "attention_window": 2}
        )
    except ValueError as error:
        raise ValueError(f"{config_file}: {error}") from None
    return kwargs


def _from_huggingface(path, max_sequence_length, window, dilation, dtype):
    config_file = os.path.join(path, "config.json")
    hf_config = read_config(path)
    kwargs = _huggingface_backbone_config(hf_config, config_file)
    _check_max_sequence_length(max_sequence_length, kwargs["max_sequence_length"], config_file)
    state = load_state_dict(path)
    task = _huggingface_task(hf_config, path)
    keys = [k for k in state if k.removeprefix(_PREFIX) not in IGNORED_KEYS]
    prefix = _PREFIX if any(key.startswith(_PREFIX) for key in keys) else ""
    if task == "masked_lm" and not prefix:
        raise ValueError(f"{path} is a masked LM by its config, but holds no `{_PREFIX}*` keys.")
    kwargs.update(max_sequence_length=max_sequence_length, window=window, dilation=dilation)
    model = _build(task, kwargs, dtype)
    table = weight_table(
        model, task, prefix, global_from_local=True, position_transform=_tiled(max_sequence_length)
    )
    assign_checkpoint(model, task, state, keys, table, prefix, hf_config, path)
    from keras_longformer.models.huggingface_preprocessing import attach_huggingface_preprocessor

    return attach_huggingface_preprocessor(model, path)


def _from_keras_hub(source, max_sequence_length, window, dilation, dtype):
    backbone_cls, masked_lm_cls = keras_hub_roberta.keras_hub_classes()
    if not isinstance(source, (backbone_cls, masked_lm_cls)):
        raise ValueError(
            "convert_to_long takes a keras-hub RobertaBackbone or RobertaMaskedLM. "
            f"Received: {type(source).__name__}"
        )
    kwargs, short_length = keras_hub_roberta.backbone_config_from_keras_hub(source)
    _check_max_sequence_length(max_sequence_length, short_length, type(source).__name__)
    kwargs.update(max_sequence_length=max_sequence_length, window=window, dilation=dilation)
    task = "masked_lm" if isinstance(source, masked_lm_cls) else "backbone"
    model = _build(task, kwargs, dtype)
    table = keras_hub_roberta.keras_hub_table(source, model, _tiled(max_sequence_length))
    for variable, value in table:
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(
                f"Shape mismatch: the keras-hub source gives {tuple(value.shape)} for "
                f"`{variable.path}`, which is {tuple(variable.shape)}."
            )
    for variable, value in table:
        variable.assign(value.astype(variable.dtype))
    tokenizer = keras_hub_roberta.keras_hub_tokenizer(source)
    if task == "masked_lm" and tokenizer is not None:
        model.preprocessor = model.preprocessor_cls(tokenizer, sequence_length=max_sequence_length)
    if task == "backbone":
        warnings.warn(
            "keras-hub's RobertaBackbone has no pooler: `pooled_output` of the long "
            "model is randomly initialised. `sequence_output` is converted.",
            stacklevel=3,
        )
    return model


def _keras_hub_preset(path):
    """A keras-hub preset directory's model, or None if `path` is not one."""
    config_file = os.path.join(path, "config.json")
    try:
        with open(config_file, encoding="utf-8") as file:
            config = json.load(file)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(config, dict) or "registered_name" not in config:
        return None  # a Hugging Face config.json
    import keras_hub

    if os.path.isfile(os.path.join(path, "task.json")):
        # A masked LM (any other task is refused by the class check after).
        return keras_hub.models.MaskedLM.from_preset(path)
    return keras_hub.models.Backbone.from_preset(path)


def convert_to_long(source, *, max_sequence_length=4096, window=256, dilation=1, dtype=None):
    """A Longformer of `max_sequence_length` tokens from a short RoBERTa-family model.

    The paper's recipe (section 5): every weight of the source is kept; the
    learned position rows are tiled, so position `k` (counted as RoBERTa
    counts, after its `pad_token_id + 1` reserved rows) holds the source's
    row `k mod P` for a source of `P` positions; every layer attends a
    sliding window; the global query/key/value projections start as
    copies of the local ones. With a window that covers the input and no
    global token (or any global tokens: the copies make them equal), the
    long model equals the source on every input the source can read.
    Continue with masked-LM training on long documents, then
    `copy_global_projections`.

    The window is one-sided: token `i` of a head with dilation `d` sees
    `i + m * d`, `m` in `[-window, window]`; the paper's 512 (two-sided)
    is `window=256`.

    Args:
        source: a Hugging Face checkpoint directory (`config.json` and
            safetensors or `.bin` weights of `RobertaModel`,
            `RobertaForMaskedLM`, `XLMRobertaModel`, `XLMRobertaForMaskedLM`,
            `CamembertModel` or `CamembertForMaskedLM`; nothing is
            downloaded), a keras-hub preset directory, or a keras-hub
            `RobertaBackbone` / `RobertaMaskedLM` instance.
        max_sequence_length: int above the source's positions.
        window: int >= 1, or a list of one per layer.
        dilation: int >= 1, or a list of one entry per layer (an int or a
            list of one int per head), as `LongformerBackbone` takes it.
        dtype: optional dtype policy of the result.

    Returns:
        A BART directory (`BartModel`, `BartForConditionalGeneration`)
        gives an LED (`bart_to_led`: `LEDBackbone` or `LEDSeq2SeqLM`, the
        paper's section 6; `max_sequence_length` is its encoder's).
        Otherwise a `LongformerBackbone` for a bare source; a `LongformerMaskedLM`
        (decoder tied to the token embedding) for a masked-LM source, with
        its preprocessor when the source has a RoBERTa byte-level BPE
        tokenizer (its files, or a keras-hub preprocessor).

    Raises:
        ValueError: before any weight is read, for a source of another
            architecture (BERT-family included: its positions start at 0
            and it reads token types, which Longformer's embeddings do not),
            `max_sequence_length` not above the source's, a bad `window` or
            `dilation`; a missing or mis-shaped weight, naming the file and key.
        FileNotFoundError: a directory without `config.json` or weights.

    Example:

    >>> mlm = convert_to_long("roberta-base/", max_sequence_length=4096, window=256)
    >>> mlm.fit(long_texts, epochs=1)   # continued masked-LM pretraining
    >>> copy_global_projections(mlm)    # masked LM never trains them

    Reference:
    - [Beltagy, Peters, Cohan, Longformer: The Long-Document Transformer,
      2020](https://arxiv.org/abs/2004.05150), section 5.
    """
    window = _check_window(window)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isdir(path):
            raise FileNotFoundError(f"`source` must be a checkpoint or preset directory. Received: {path!r}")
        preset = _keras_hub_preset(path)
        if preset is not None:
            return _from_keras_hub(preset, max_sequence_length, window, dilation, dtype)
        if checkpoint_model_type(path) == "bart":
            from keras_longformer.convert.led_from_bart import bart_to_led

            return bart_to_led(path, max_encoder_sequence_length=max_sequence_length, window=window,
                               dilation=dilation, dtype=dtype)
        return _from_huggingface(path, max_sequence_length, window, dilation, dtype)
    return _from_keras_hub(source, max_sequence_length, window, dilation, dtype)


def copy_global_projections(model):
    """Copies every layer's local query/key/value projections to the global ones.

    Masked-LM training has no global token, so it never trains the global
    projections: the paper copies the trained local ones into them again
    before fine-tuning on a task that uses global attention.

    Args:
        model: a `LongformerBackbone`, or a task model on one.

    Returns:
        `model`, changed in place.
    """
    backbone = getattr(model, "backbone", model)
    for layer in backbone.encoder_layers:
        attention = layer.self_attention
        if not attention.global_projections:
            continue
        for local, glob in (
            (attention._query_dense, attention._global_query_dense),
            (attention._key_dense, attention._global_key_dense),
            (attention._value_dense, attention._global_value_dense),
        ):
            if local.quantization_mode or glob.quantization_mode:
                raise ValueError(
                    f"`{glob.path}` is quantized: copy the global projections before "
                    "`quantize`."
                )
            # `kernel` is the merged one when LoRA is on; the global
            # projection's own LoRA factors restart from zero.
            glob._kernel.assign(local.kernel)
            if glob.bias is not None:
                glob.bias.assign(local.bias)
            if glob.lora_enabled:
                glob.lora_kernel_b.assign(0.0 * glob.lora_kernel_b)
    return model
