"""The attention pattern read off the op equals the dense oracle's visibility,
and its picture (the README's) is written by the package."""

import numpy as np
import pytest

from keras_longformer.attention_pattern import attention_pattern
from keras_longformer.attention_pattern import plot_attention_pattern
from reference import allowed_keys

pytestmark = pytest.mark.backends


@pytest.mark.parametrize("window, dilation, causal, global_positions", [
    (2, 1, False, ()), (3, 2, False, (0,)), (2, 1, True, (0, 5)), (40, 1, False, (7,)), (0, 3, True, ()),
])
def test_pattern_is_the_oracle_s(window, dilation, causal, global_positions):
    length = 23
    pattern = attention_pattern(length, window=window, dilation=dilation, causal=causal,
                                global_positions=list(global_positions))
    global_mask = np.zeros((1, length), bool)
    global_mask[0, list(global_positions)] = True
    local, global_rows = allowed_keys(length, window=window, dilation=[dilation], causal=causal,
                                      padding_mask=np.ones((1, length), bool), global_mask=global_mask)
    expected = np.where(global_mask[0][:, None], global_rows[0, 0], local[0, 0])
    np.testing.assert_array_equal(pattern, expected)


def test_the_picture_is_a_png_and_bad_sizes_are_refused(tmp_path):
    path = plot_attention_pattern(tmp_path / "pattern.png", length=32, window=3, dilation=2)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="Received: length=4096"):
        attention_pattern(4096, window=2)
    with pytest.raises(ValueError, match="Received: global_positions=\\[9\\]"):
        attention_pattern(8, window=2, global_positions=[9])
