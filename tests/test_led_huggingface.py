"""LEDBackbone against Hugging Face's PyTorch LED: random configurations, several
windows, lengths and global-token patterns; encoder and decoder outputs within
1e-4. Bad checkpoints refused before any weight is assigned."""

import json

import keras
import numpy as np
import pytest
import torch
from transformers import LEDConfig
from transformers import LEDForConditionalGeneration
from transformers import LEDModel

from keras_longformer.convert.led import led_from_huggingface
from keras_longformer.models import LEDBackbone

pytestmark = pytest.mark.backends
TOLERANCE = 1e-4  # float32


def hf_led(tmp_path, windows, cls=LEDModel, seed=0, **overrides):
    torch.manual_seed(seed)
    settings = dict(
        vocab_size=60, d_model=16, encoder_layers=len(windows), decoder_layers=len(windows),
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=24, decoder_ffn_dim=24,
        attention_window=list(windows), max_encoder_position_embeddings=128,
        max_decoder_position_embeddings=32,
    )
    config = LEDConfig(**{**settings, **overrides})
    model = cls(config).eval()
    with torch.no_grad():  # LayerNorms and biases away from 1 and 0, so a swap shows
        for name, parameter in model.named_parameters():
            if parameter.ndim == 1:
                parameter.add_(0.1 * torch.randn_like(parameter))
    directory = tmp_path / f"led_{cls.__name__}_{seed}"
    model.save_pretrained(directory)
    return model, directory


def features(length, decoder_length, global_positions, padded_row, seed=1):
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, 60, (2, length)).astype("int64")
    padding = np.ones((2, length), "int64")
    if padded_row and length > 3:
        padding[1, length - length // 3 :] = 0
        ids[1, length - length // 3 :] = 1
    global_mask = np.zeros((2, length), "int64")
    global_mask[:, [p for p in global_positions if p < length]] = 1
    global_mask *= padding
    decoder_ids = rng.integers(3, 60, (2, decoder_length)).astype("int64")
    return ids, padding, global_mask, decoder_ids


def compare(model, backbone, length, decoder_length, global_positions, padded_row=True):
    ids, padding, global_mask, decoder_ids = features(length, decoder_length, global_positions, padded_row)
    with torch.no_grad():
        expected = model(
            input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(padding),
            global_attention_mask=torch.from_numpy(global_mask),
            decoder_input_ids=torch.from_numpy(decoder_ids),
        )
    outputs = backbone({
        "encoder_token_ids": ids.astype("int32"), "encoder_padding_mask": padding.astype("int32"),
        "encoder_global_mask": global_mask.astype("int32"),
        "decoder_token_ids": decoder_ids.astype("int32"),
        "decoder_padding_mask": np.ones_like(decoder_ids, "int32"),
    })
    encoder = keras.ops.convert_to_numpy(outputs["encoder_sequence_output"])
    decoder = keras.ops.convert_to_numpy(outputs["decoder_sequence_output"])
    real = padding.astype(bool)
    encoder_error = np.max(np.abs(encoder[real] - expected.encoder_last_hidden_state.numpy()[real]))
    decoder_error = np.max(np.abs(decoder - expected.last_hidden_state.numpy()))
    assert encoder_error <= TOLERANCE, (length, global_positions, encoder_error)
    assert decoder_error <= TOLERANCE, (length, global_positions, decoder_error)


@pytest.mark.parametrize("windows", [(4, 8), (4, 4, 12)])  # HF needs attention_window >= 4
@pytest.mark.parametrize("length", [1, 7, 33, 70, 700])
@pytest.mark.parametrize("global_positions", [(), (0,), (0, 3, 5)])
def test_led_backbone_equals_hugging_face(tmp_path, windows, length, global_positions):
    model, directory = hf_led(tmp_path, windows, max_encoder_position_embeddings=1024)
    backbone = led_from_huggingface(directory)
    assert backbone.window == ([w // 2 for w in windows] if len(set(windows)) > 1 else windows[0] // 2)
    compare(model, backbone, length, 9, global_positions)


def test_a_conditional_generation_checkpoint_loads_its_led_part(tmp_path):
    model, directory = hf_led(tmp_path, (4, 8), cls=LEDForConditionalGeneration, seed=3)
    backbone = led_from_huggingface(directory)
    compare(model.led, backbone, 20, 5, (0,))


def test_bad_checkpoints_are_refused_with_the_reason(tmp_path):
    _, directory = hf_led(tmp_path, (4, 8))
    config_file = directory / "config.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps(dict(config, model_type="bart")))
    with pytest.raises(ValueError, match="model_type='led'.*convert_to_long.*Received: model_type='bart'"):
        led_from_huggingface(directory)
    config_file.write_text(json.dumps(dict(config, decoder_layers=3)))
    with pytest.raises(ValueError, match="Received: encoder_layers=2, decoder_layers=3"):
        led_from_huggingface(directory)
    config_file.write_text(json.dumps(dict(config, attention_window=[4, 7])))
    with pytest.raises(ValueError, match="attention_window=\\[4, 7\\]"):
        led_from_huggingface(directory)
    config_file.write_text(json.dumps(dict(config, d_model=32)))
    with pytest.raises(ValueError, match="Shape mismatch for `shared.weight`"):
        led_from_huggingface(directory)


def test_led_backbone_config_round_trips():
    backbone = LEDBackbone(vocabulary_size=30, num_layers=2, num_heads=2, hidden_dim=8,
                           intermediate_dim=16, window=[2, 3], dilation=[1, [1, 2]],
                           max_encoder_sequence_length=64, max_decoder_sequence_length=16)
    clone = LEDBackbone.from_config(backbone.get_config())
    assert clone.get_config() == backbone.get_config()
    with pytest.raises(ValueError, match="Received: window=-1"):
        LEDBackbone(vocabulary_size=30, num_layers=1, num_heads=2, hidden_dim=8,
                    intermediate_dim=16, window=-1)


@pytest.mark.parametrize(
    "encoder_length, decoder_length, message",
    [(20, 3, "`encoder_token_ids` holds 20 tokens.*max_encoder_sequence_length=16"),
     (10, 6, "`decoder_token_ids` holds 6 tokens.*max_decoder_sequence_length=4")],
)
def test_inputs_longer_than_their_positions_are_named_errors(encoder_length, decoder_length, message):
    from keras_longformer.models import LEDSeq2SeqLM

    backbone = LEDBackbone(vocabulary_size=30, num_layers=1, num_heads=2, hidden_dim=8,
                           intermediate_dim=16, window=2, max_encoder_sequence_length=16,
                           max_decoder_sequence_length=4)
    features = {
        "encoder_token_ids": np.full((1, encoder_length), 5, "int32"),
        "encoder_padding_mask": np.ones((1, encoder_length), "int32"),
        "encoder_global_mask": np.zeros((1, encoder_length), "int32"),
        "decoder_token_ids": np.full((1, decoder_length), 5, "int32"),
        "decoder_padding_mask": np.ones((1, decoder_length), "int32"),
    }
    with pytest.raises(ValueError, match=message):
        backbone(features)
    lm = LEDSeq2SeqLM(backbone)
    with pytest.raises(ValueError, match=message):
        lm(features)
    with pytest.raises(ValueError, match=message):
        lm.generate(features, stop_token_ids=None)
