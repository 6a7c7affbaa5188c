"""The LED encoder exported to ONNX on its own: verified by export_onnx across
lengths (up to its positions) and global patterns, and onnxruntime compared with
Keras directly."""

import keras
import numpy as np

from keras_longformer.export import export_onnx
from keras_longformer.export import onnx_session
from keras_longformer.models import LEDBackbone

ENCODER_INPUTS = ("encoder_token_ids", "encoder_padding_mask", "encoder_global_mask")


def test_led_encoder_exports_and_matches_keras(tmp_path):
    keras.utils.set_random_seed(0)
    backbone = LEDBackbone(vocabulary_size=30, num_layers=2, num_heads=2, hidden_dim=8,
                           intermediate_dim=16, window=[2, 3], dilation=[1, [1, 2]],
                           max_encoder_sequence_length=64, max_decoder_sequence_length=8)
    encoder = keras.Model({name: backbone.input[name] for name in ENCODER_INPUTS},
                          backbone.output["encoder_sequence_output"], name="led_encoder")
    report = export_onnx(encoder, tmp_path / "encoder.onnx")
    assert report.verified and max(row.length for row in report.rows) <= 64
    rng = np.random.default_rng(1)
    ids = rng.integers(3, 30, (2, 50)).astype("int32")
    padding = np.ones_like(ids)
    padding[1, 40:] = 0
    glob = np.zeros_like(ids)
    glob[:, [0, 9]] = 1
    feeds = {"encoder_token_ids": ids, "encoder_padding_mask": padding, "encoder_global_mask": glob}
    expected = keras.ops.convert_to_numpy(encoder(feeds))
    session = onnx_session(report.path, provider="cpu")
    (actual,) = session.run(None, {i.name: feeds[i.name].astype("int32") for i in session.get_inputs()})
    real = padding.astype(bool)
    assert np.max(np.abs(actual[real] - expected[real])) <= 1e-5
