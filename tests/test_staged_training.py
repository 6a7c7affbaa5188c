"""The paper's staged schedule: a trained backbone's attention changed for the
next phase (window, dilation, length), its weights kept."""

import keras
import numpy as np
import pytest

from keras_longformer import models

pytestmark = pytest.mark.backends


def trained_backbone():
    keras.utils.set_random_seed(0)
    backbone = models.LongformerBackbone(
        vocabulary_size=40, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
        window=[2, 4], causal=True, max_sequence_length=24, dropout=0.0, attention_dropout=0.0,
    )
    for weight in backbone.weights:  # stands for training: every weight away from its init
        weight.assign(np.random.default_rng(len(weight.path)).normal(0, 0.2, weight.shape))
    return backbone


def outputs(backbone, length):
    ids = np.random.default_rng(1).integers(3, 40, (2, length)).astype("int32")
    features = {"token_ids": ids, "padding_mask": np.ones_like(ids), "global_mask": np.zeros_like(ids)}
    return keras.ops.convert_to_numpy(backbone(features)["sequence_output"])


def test_next_phase_keeps_every_weight_and_tiles_positions():
    phase_1 = trained_backbone()
    phase_2 = phase_1.with_attention(window=[4, 8], dilation=[1, [1, 2]], max_sequence_length=48)
    assert (phase_2.window, phase_2.dilation, phase_2.max_sequence_length) == ([4, 8], [1, [1, 2]], 48)
    old = {w.path: keras.ops.convert_to_numpy(w) for w in phase_1.weights}
    for weight in phase_2.weights:
        value = keras.ops.convert_to_numpy(weight)
        if "position_embedding" in weight.path:
            reserved = phase_1.pad_token_id + 1
            k = np.arange(48)
            np.testing.assert_array_equal(value[reserved + k], old[weight.path][reserved + k % 24])
        else:
            np.testing.assert_array_equal(value, old[weight.path])
    # Same attention and length: the same network.
    same = phase_1.with_attention()
    assert np.max(np.abs(outputs(same, 20) - outputs(phase_1, 20))) == 0.0
    # A window covering the input: a wider window changes nothing there.
    covering = phase_1.with_attention(window=[30, 30])
    wide = phase_1.with_attention(window=[40, 40])
    assert np.max(np.abs(outputs(covering, 20) - outputs(wide, 20))) <= 1e-6
    assert np.max(np.abs(outputs(covering, 20) - outputs(phase_1, 20))) > 1e-3


def test_a_phase_that_loses_trained_positions_or_a_bad_window_is_refused():
    backbone = trained_backbone()
    with pytest.raises(ValueError, match="trained 24 .*Received: max_sequence_length=16"):
        backbone.with_attention(max_sequence_length=16)
    with pytest.raises(ValueError, match="Received: window=-1"):
        backbone.with_attention(window=-1)
    with pytest.raises(ValueError, match="dilation"):
        backbone.with_attention(dilation=[1])


def test_causal_lm_next_phase_keeps_its_decoder_bias_and_logits():
    backbone = trained_backbone()
    lm = models.LongformerCausalLM(backbone)
    lm.decoder.bias.assign(np.random.default_rng(2).normal(0, 0.5, lm.decoder.bias.shape))
    longer = lm.with_attention(max_sequence_length=48)
    assert longer.backbone.max_sequence_length == 48 and longer.backbone is not backbone
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(longer.decoder.bias), keras.ops.convert_to_numpy(lm.decoder.bias)
    )
    ids = np.random.default_rng(1).integers(3, 40, (2, 20)).astype("int32")
    features = {"token_ids": ids, "padding_mask": np.ones_like(ids), "global_mask": np.zeros_like(ids)}
    # Within the trained length, the same window: the same logits.
    before, after = (keras.ops.convert_to_numpy(model(features)) for model in (lm, longer))
    assert np.max(np.abs(after - before)) == 0.0
