"""BART to LED (the paper's recipe): with a window covering the input the LED
computes what BART does (Hugging Face's PyTorch BART, logits within 1e-4);
encoder positions tiled past BART's length; bad sources named."""

import json

import keras
import numpy as np
import pytest
import torch
from transformers import BartConfig
from transformers import BartForConditionalGeneration
from transformers import BartModel

from keras_longformer.convert.led_from_bart import bart_to_led
from keras_longformer.models import LEDBackbone
from keras_longformer.models import LEDSeq2SeqLM
from test_led_huggingface import features

pytestmark = pytest.mark.backends
TOLERANCE = 1e-4


def hf_bart(tmp_path, cls=BartForConditionalGeneration):
    torch.manual_seed(0)
    config = BartConfig(vocab_size=60, d_model=16, encoder_layers=2, decoder_layers=2,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=24,
                        decoder_ffn_dim=24, max_position_embeddings=40)
    model = cls(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim == 1:
                parameter.add_(0.1 * torch.randn_like(parameter))
        if hasattr(model, "final_logits_bias"):
            model.final_logits_bias.normal_(0, 0.5)
    directory = tmp_path / cls.__name__
    model.save_pretrained(directory)
    return model, directory


@pytest.mark.parametrize("length, global_positions", [(1, ()), (9, (0,)), (40, (0, 5))])
def test_led_with_a_covering_window_equals_bart(tmp_path, length, global_positions):
    model, directory = hf_bart(tmp_path)
    lm = bart_to_led(directory, max_encoder_sequence_length=160, window=40)
    assert isinstance(lm, LEDSeq2SeqLM) and lm.backbone.max_encoder_sequence_length == 160
    ids, padding, global_mask, decoder_ids = features(length, 6, global_positions, padded_row=True)
    with torch.no_grad():
        expected = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(padding),
                         decoder_input_ids=torch.from_numpy(decoder_ids)).logits.numpy()
    logits = lm({
        "encoder_token_ids": ids.astype("int32"), "encoder_padding_mask": padding.astype("int32"),
        "encoder_global_mask": global_mask.astype("int32"), "decoder_token_ids": decoder_ids.astype("int32"),
        "decoder_padding_mask": np.ones_like(decoder_ids, "int32"),
    })
    assert np.max(np.abs(keras.ops.convert_to_numpy(logits) - expected)) <= TOLERANCE


def test_encoder_positions_are_bart_s_tiled_and_a_base_model_gives_a_backbone(tmp_path):
    model, directory = hf_bart(tmp_path, cls=BartModel)
    backbone = bart_to_led(directory, max_encoder_sequence_length=100, window=8)
    assert isinstance(backbone, LEDBackbone)
    rows = model.encoder.embed_positions.weight.detach().numpy()[2:]
    table = keras.ops.convert_to_numpy(backbone.encoder_position_embedding.position_embeddings)
    np.testing.assert_array_equal(table, rows[np.arange(100) % 40])
    decoder = keras.ops.convert_to_numpy(backbone.decoder_position_embedding.position_embeddings)
    np.testing.assert_array_equal(decoder, model.decoder.embed_positions.weight.detach().numpy()[2:])


def test_bad_sources_are_refused_with_the_reason(tmp_path):
    _, directory = hf_bart(tmp_path)
    with pytest.raises(ValueError, match="max_position_embeddings=40.*Received: max_encoder_sequence_length=20"):
        bart_to_led(directory, max_encoder_sequence_length=20)
    with pytest.raises(ValueError, match="Received: window=-1"):
        bart_to_led(directory, max_encoder_sequence_length=80, window=-1)
    config_file = directory / "config.json"
    config = json.loads(config_file.read_text())
    for change, message in ((dict(model_type="led"), "model_type='bart'"),
                            (dict(scale_embedding=True), "scale_embedding=False"),
                            (dict(decoder_layers=3), "encoder_layers=2, decoder_layers=3")):
        config_file.write_text(json.dumps(dict(config, **change)))
        with pytest.raises(ValueError, match=message):
            bart_to_led(directory, max_encoder_sequence_length=80)


def test_convert_to_long_on_a_bart_directory_gives_the_led(tmp_path):
    from keras_longformer import convert_to_long

    _, directory = hf_bart(tmp_path)
    lm = convert_to_long(directory, max_sequence_length=120, window=16)
    assert isinstance(lm, LEDSeq2SeqLM)
    assert lm.backbone.max_encoder_sequence_length == 120 and lm.backbone.window == 16
