"""examples/quickstart.py at small size: it trains, and the ONNX file it writes
answers as the model it trained (compared here directly, not through the
exporter's own report)."""

import numpy as np
import onnxruntime

from helpers import load_example


def test_quickstart_trains_exports_and_the_file_answers_as_keras(tmp_path):
    quickstart = load_example("quickstart")
    output = tmp_path / "quickstart.onnx"
    result = quickstart.main(["--length", "256", "--examples", "32", "--epochs", "1", "--output", str(output)])
    assert result["output"] == str(output)
    session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(3)
    for length in (40, 300):  # lengths the export never traced
        x, _ = quickstart.make_data(rng, 3, length)
        feeds = {value.name: np.asarray(x[value.name]).astype("bool" if value.type == "tensor(bool)" else "int32")
                 for value in session.get_inputs()}
        expected = np.asarray(result["model"](x))
        (actual,) = session.run(None, feeds)
        assert np.max(np.abs(actual - expected)) <= 1e-4, length
