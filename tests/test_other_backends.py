"""The op is `keras.ops` only: it runs unchanged on the torch backend."""

import os
import subprocess
import sys
import textwrap

import pytest
from helpers import TESTS


SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    import keras
    assert keras.backend.backend() == {backend!r}
    from keras_longformer.ops import longformer_attention
    from reference import longformer_attention_reference
    rng = np.random.default_rng(0)
    worst = 0.0
    for length in (1, 7, 30):
        for causal in (False, True):
            q, k, v = (rng.standard_normal((2, length, 3, 4)).astype("float32") for _ in range(3))
            global_mask = np.zeros((2, length), bool)
            global_mask[:, 0] = True
            global_mask[0, length // 2] = True
            padding = np.ones((2, length), bool)
            padding[1, max(1, length - 2):] = False
            kwargs = dict(window=2, dilation=[1, 2, 3], causal=causal,
                          padding_mask=padding, global_mask=global_mask)
            out = keras.ops.convert_to_numpy(longformer_attention(q, k, v, **kwargs))
            expected = longformer_attention_reference(q, k, v, **kwargs)
            worst = max(worst, float(np.abs(out - expected).max()))
    print(worst)
    """
)


@pytest.mark.parametrize("backend", ["torch"])
def test_op_matches_reference_on_backend(backend):
    pytest.importorskip(backend, reason=f"the {backend} backend needs {backend} installed")
    env = dict(os.environ, KERAS_BACKEND=backend)
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(tests=TESTS, backend=backend)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert float(result.stdout.split()[-1]) <= 1e-5
