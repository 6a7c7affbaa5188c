"""BART to LED, the paper's recipe (section 6): a long summarizer from a short one.

Every BART weight is kept; the encoder's self-attention becomes Longformer's
(sliding window, global tokens) with the global query, key and value starting
as copies of the local ones, and the encoder's learned positions are tiled
to the new length (BART's 1,024 rows copied 16 times for 16,384 tokens).
BART keeps two reserved rows before its positions (`offset=2`); LED has
none, so the rows from the third on are the ones tiled. With a window that
covers the input, the LED computes exactly what BART does.
"""

import numpy as np

from keras_longformer.convert.checkpoint_tensors import load_state_dict
from keras_longformer.convert.huggingface_config import read_config
from keras_longformer.convert.huggingface import assign_rows
from keras_longformer.convert.led import symmetric_setting
from keras_longformer.convert.led import led_weight_table

BART_POSITION_OFFSET = 2
# LED key fragment -> BART's.
RENAMES = (
    ("self_attn.longformer_self_attn.query_global.", "self_attn.q_proj."),
    ("self_attn.longformer_self_attn.key_global.", "self_attn.k_proj."),
    ("self_attn.longformer_self_attn.value_global.", "self_attn.v_proj."),
    ("self_attn.longformer_self_attn.query.", "self_attn.q_proj."),
    ("self_attn.longformer_self_attn.key.", "self_attn.k_proj."),
    ("self_attn.longformer_self_attn.value.", "self_attn.v_proj."),
    ("self_attn.output.", "self_attn.out_proj."),
)


def _bart_key(led_key):
    for led, bart in RENAMES:
        if led in led_key:
            return led_key.replace(led, bart)
    return led_key


def _positions(length):
    """BART's position rows (after its two reserved ones), tiled to `length`."""

    def transform(array, variable):
        rows = array[BART_POSITION_OFFSET:]
        return rows[np.arange(length) % len(rows)]

    return transform


def _check_bart(hf_config, path):
    if hf_config.get("model_type") != "bart":
        raise ValueError(f"{path}: expected a BART checkpoint (model_type='bart'). "
                         f"Received: model_type={hf_config.get('model_type')!r}")
    unsupported = {"activation_function": "gelu", "scale_embedding": False,
                   "normalize_before": False, "add_final_layer_norm": False}
    for key, supported in unsupported.items():
        if hf_config.get(key, supported) != supported:
            raise ValueError(f"{path}: LED is BART with {key}={supported!r}. "
                             f"Received: {key}={hf_config[key]!r}")
    for encoder, decoder in (("encoder_layers", "decoder_layers"),
                             ("encoder_attention_heads", "decoder_attention_heads"),
                             ("encoder_ffn_dim", "decoder_ffn_dim")):
        symmetric_setting(hf_config, encoder, decoder)


def bart_to_led(path, *, max_encoder_sequence_length=16384, window=512, dilation=1, dtype=None):
    """An LED made from a local Hugging Face BART checkpoint.

    Args:
        path: directory of a `BartModel` or `BartForConditionalGeneration`
            checkpoint (`config.json` and `model.safetensors` or `.bin`).
        max_encoder_sequence_length: int >= BART's `max_position_embeddings`,
            the longest input of the LED.
        window: int >= 0, the encoder's one-sided window (the paper: 512,
            Hugging Face's `attention_window=1024`), or one per layer.
        dilation: the encoder's dilation, as `LEDBackbone` takes it.
        dtype: optional dtype policy.

    Returns:
        An `LEDSeq2SeqLM` for a `BartForConditionalGeneration` checkpoint
        (its `final_logits_bias` kept), else an `LEDBackbone`.

    Raises:
        ValueError: another architecture, a BART variant LED is not (pre-
            LayerNorm, scaled embeddings), a shorter length, a bad window,
            or a missing key, named before any weight is assigned.
    """
    from keras_longformer.models.led_backbone import LEDBackbone
    from keras_longformer.models.led_seq2seq_lm import LEDSeq2SeqLM

    hf_config = read_config(path)
    _check_bart(hf_config, path)
    short = hf_config.get("max_position_embeddings", 1024)
    if isinstance(max_encoder_sequence_length, bool) or not isinstance(max_encoder_sequence_length, int) \
            or max_encoder_sequence_length < short:
        raise ValueError(
            f"`max_encoder_sequence_length` must be an int >= BART's max_position_embeddings={short}. "
            f"Received: max_encoder_sequence_length={max_encoder_sequence_length!r}"
        )
    backbone = LEDBackbone(
        vocabulary_size=hf_config["vocab_size"], num_layers=hf_config["encoder_layers"],
        num_heads=hf_config["encoder_attention_heads"], hidden_dim=hf_config["d_model"],
        intermediate_dim=hf_config["encoder_ffn_dim"], window=window, dilation=dilation,
        max_encoder_sequence_length=max_encoder_sequence_length, max_decoder_sequence_length=short,
        dropout=float(hf_config.get("dropout", 0.1)),
        attention_dropout=float(hf_config.get("attention_dropout", 0.0)), dtype=dtype,
    )
    state = load_state_dict(path)
    keys = set(state)
    prefix = "model." if "model.shared.weight" in keys else ""
    table = []
    for variable, key, transform in led_weight_table(backbone, prefix):
        if key.endswith("encoder.embed_positions.weight"):
            transform = _positions(max_encoder_sequence_length)
        elif key.endswith("decoder.embed_positions.weight"):
            transform = _positions(short)
        table.append((variable, _bart_key(key), transform))
    missing = [key for _, key, _ in table if key not in keys]
    if missing:
        raise ValueError(f"Missing key `{missing[0]}` in the BART checkpoint at {path}.")
    model = backbone
    if "final_logits_bias" in keys or "lm_head.weight" in keys:
        model = LEDSeq2SeqLM(backbone)
        if "final_logits_bias" in keys:
            table.append((model.decoder.bias, "final_logits_bias", lambda array, _: array.reshape(-1)))
    assign_rows(table, state, path)
    return model
