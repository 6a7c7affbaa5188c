"""A LoRA-adapted and a Keras-int8 model export to ONNX exactly.

onnxruntime is compared with Keras itself, not through the export's report.
"""

import keras
import numpy as np
import onnxruntime
import pytest

from keras_longformer import models
from keras_longformer.export import export_onnx


def features(length=37):
    ids = np.random.default_rng(1).integers(3, 50, (2, length)).astype("int32")
    glob = np.zeros_like(ids)
    glob[:, 0] = 1
    return {"token_ids": ids, "padding_mask": np.ones_like(ids), "global_mask": glob}


@pytest.mark.parametrize("adaptation", ["lora", "int8"])
def test_adapted_classifier_exports_exactly(adaptation, tmp_path):
    keras.utils.set_random_seed(0)
    backbone = models.LongformerBackbone(
        vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32,
        window=3, dilation=[[1, 2]], max_sequence_length=64, dropout=0.0, attention_dropout=0.0,
    )
    model = models.LongformerTextClassifier(backbone, num_classes=3, dropout=0.0)
    if adaptation == "lora":
        backbone.enable_lora(2)
        for weight in backbone.weights:  # as if trained: the adapters change the outputs
            if "lora_kernel_b" in weight.path:
                weight.assign(np.random.default_rng(0).normal(0, 0.5, weight.shape))
    else:
        with pytest.warns(UserWarning, match="does not have a `quantize` method"):
            model.quantize("int8")
    path = str(tmp_path / f"{adaptation}.onnx")
    export_onnx(model, path)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    for length in (5, 37, 64):
        inputs = features(length)
        (logits,) = session.run(None, inputs)
        assert np.max(np.abs(logits - keras.ops.convert_to_numpy(model(inputs)))) <= 1e-5
