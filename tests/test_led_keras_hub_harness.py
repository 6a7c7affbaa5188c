"""keras-hub's own model harness (`keras_hub/src/tests/test_case.py`) on LEDBackbone:
config and serialization round trips, eager and compiled calls, mixed precision,
quantization, `.keras` saving and presets. (`run_task_test` needs the task's
preprocessor, which LED does not have yet: issue 19.)"""

import numpy as np
import pytest
from keras_hub.src.tests import test_case

from keras_longformer import models


def led_kwargs():
    return dict(vocabulary_size=40, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16,
                window=[2, 3], dilation=[1, [1, 2]], max_encoder_sequence_length=24,
                max_decoder_sequence_length=12, dropout=0.0)


def led_inputs(length=12, decoder_length=5, batch_size=2):
    rng = np.random.default_rng(0)
    ids = rng.integers(3, 40, (batch_size, length)).astype("int32")
    padding = np.ones((batch_size, length), "int32")
    padding[1, -3:] = 0
    ids[padding == 0] = 1
    glob = np.zeros((batch_size, length), "int32")
    glob[:, 0] = 1
    decoder = rng.integers(3, 40, (batch_size, decoder_length)).astype("int32")
    return {"encoder_token_ids": ids, "encoder_padding_mask": padding, "encoder_global_mask": glob,
            "decoder_token_ids": decoder, "decoder_padding_mask": np.ones_like(decoder)}


@pytest.mark.backends
class LEDHarnessTest(test_case.TestCase):
    test_session = None  # tf.test.TestCase's session helper, not a test

    def test_backbone_basics(self):
        self.run_backbone_test(
            cls=models.LEDBackbone,
            init_kwargs=led_kwargs(),
            input_data=led_inputs(),
            expected_output_shape={"encoder_sequence_output": (2, 12, 8),
                                   "decoder_sequence_output": (2, 5, 8)},
        )

    def test_backbone_preset(self):
        backbone = models.LEDBackbone(**led_kwargs())
        preset = self.get_temp_dir()
        backbone.save_to_preset(preset)
        inputs = led_inputs()
        self.run_preset_test(cls=models.LEDBackbone, preset=preset, input_data=inputs,
                             expected_output=backbone(inputs))
