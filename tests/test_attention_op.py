"""`longformer_attention` against the dense oracle in `tests/reference.py`."""

import itertools
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import keras
import tensorflow as tf
from keras import ops

from keras_longformer.ops import longformer_attention
from reference import allowed_keys
from reference import longformer_attention_reference
from helpers import max_abs_error

FLOAT32_ATOL = 1e-5
# Outputs are averages of values of magnitude ~3: a few ulps of the dtype.
LOW_PRECISION_ATOL = {"float16": 4e-3, "bfloat16": 3e-2}
LARGE_SCORE_FLOAT16_ATOL = 5e-2

BATCH, HEADS, HEAD_DIM = 2, 3, 4


def random_inputs(rng, length, batch=BATCH, heads=HEADS, head_dim=HEAD_DIM):
    shape = (batch, length, heads, head_dim)
    return [rng.standard_normal(shape).astype("float32") for _ in range(6)]


def padding_pattern(name, batch, length):
    mask = np.ones((batch, length), bool)
    if name == "right":
        mask[-1, max(1, length - 3) :] = False
    elif name == "holes":
        mask[0, 1::3] = False
        mask[0, 0] = True
        mask[-1, length // 2 :] = False if length > 1 else True
    return mask


def global_pattern(name, batch, length, window=1):
    mask = np.zeros((batch, length), bool)
    if name == "first":
        mask[:, 0] = True
    elif name == "middle":
        mask[:, length // 2] = True
    elif name == "many":
        # More global tokens than the window, different counts per row.
        mask[0, ::2] = True
        mask[-1, 1 :: max(1, window // 2)] = True
    return None if name == "none" else mask



# A few cases of the grid that also run under JAX and torch (compiling
# every shape there is slow); TensorFlow runs the whole grid.
ON_EVERY_BACKEND = [
    (1, 3, 1, False),
    (5, 40, 1, False),
    (13, 3, [1, 3, 2], False),
    (13, 3, [1, 3, 2], True),
    (33, 1, 2, False),
    (33, 1, 2, True),
    (33, 0, [1, 3, 2], True),
]
GRID = [
    # (length, window, dilation, causal)
    pytest.param(*case, marks=pytest.mark.backends) if list(case) in map(list, ON_EVERY_BACKEND) else case
    for case in itertools.product([1, 5, 13, 33], [0, 1, 3, 40], [1, 2, [1, 3, 2]], [False, True])
]


@pytest.mark.parametrize("global_name", ["none", "first", "middle", "many"])
@pytest.mark.parametrize("length,window,dilation,causal", GRID)
def test_matches_dense_reference(length, window, dilation, causal, global_name):
    rng = np.random.default_rng(length * 1000 + window)
    q, k, v, gq, gk, gv = random_inputs(rng, length)
    padding = "holes" if (length + window) % 2 else "right"
    kwargs = dict(
        window=window,
        dilation=dilation,
        causal=causal,
        padding_mask=padding_pattern(padding, BATCH, length),
        global_mask=global_pattern(global_name, BATCH, length, window),
    )
    # Separate global projections on odd windows, shared on even ones.
    global_inputs = (
        dict(global_query=gq, global_key=gk, global_value=gv) if window % 2 else {}
    )
    actual = longformer_attention(q, k, v, **kwargs, **global_inputs)
    expected = longformer_attention_reference(q, k, v, **kwargs, **global_inputs)
    assert actual.shape == q.shape
    assert max_abs_error(actual, expected) <= FLOAT32_ATOL


@pytest.mark.parametrize("causal", [False, True])
def test_all_heads_at_once_matches_the_reference_and_ends_with_its_context(causal):
    """The exporter's trace (every head in one batched op, also on
    TensorFlow) computes the same attention; outside the context the
    backend's own grouping is back."""
    from keras_longformer.ops import windowed

    rng = np.random.default_rng(11)
    q, k, v, _, _, _ = random_inputs(rng, 33)
    kwargs = dict(
        window=3, dilation=[1, 3, 2], causal=causal,
        padding_mask=padding_pattern("holes", BATCH, 33),
        global_mask=global_pattern("many", BATCH, 33, 3),
    )
    heads = q.shape[2]
    grouped = windowed.heads_per_group(heads)
    with windowed.all_heads_at_once():
        assert windowed.heads_per_group(heads) == heads
        actual = longformer_attention(q, k, v, **kwargs)
    assert windowed.heads_per_group(heads) == grouped
    expected = longformer_attention_reference(q, k, v, **kwargs)
    assert max_abs_error(actual, expected) <= FLOAT32_ATOL


@pytest.mark.backends
@pytest.mark.parametrize(
    "length,window", [(1, 0), (6, 2), (7, 100), (64, 5), (100, 16)]
)
def test_separate_global_projections_and_scale(length, window):
    rng = np.random.default_rng(3)
    q, k, v, gq, gk, gv = random_inputs(rng, length)
    kwargs = dict(
        window=window,
        dilation=[2, 1, 4],
        padding_mask=padding_pattern("right", BATCH, length),
        global_mask=global_pattern("many", BATCH, length, window),
        global_query=gq,
        global_key=gk,
        global_value=gv,
        scale=0.3,
    )
    actual = longformer_attention(q, k, v, **kwargs)
    expected = longformer_attention_reference(q, k, v, **kwargs)
    assert max_abs_error(actual, expected) <= FLOAT32_ATOL


@pytest.mark.backends
def test_window_at_least_length_is_full_attention():
    rng = np.random.default_rng(4)
    q, k, v, *_ = random_inputs(rng, 9)
    actual = longformer_attention(q, k, v, window=9)
    dense = longformer_attention_reference(q, k, v, window=1000)
    assert max_abs_error(actual, dense) <= FLOAT32_ATOL
    huge = longformer_attention(q, k, v, window=10**9)
    assert max_abs_error(huge, dense) <= FLOAT32_ATOL


@pytest.mark.backends
def test_integer_masks_of_any_width():
    rng = np.random.default_rng(5)
    q, k, v, *_ = random_inputs(rng, 12)
    padding = padding_pattern("holes", BATCH, 12)
    global_mask = global_pattern("middle", BATCH, 12)
    expected = longformer_attention_reference(
        q, k, v, window=2, padding_mask=padding, global_mask=global_mask
    )
    for dtype in ("int8", "int32", "int64", "uint8"):
        actual = longformer_attention(
            q,
            k,
            v,
            window=2,
            padding_mask=padding.astype(dtype),
            global_mask=global_mask.astype(dtype),
        )
        assert max_abs_error(actual, expected) <= FLOAT32_ATOL


@pytest.mark.backends
def test_padded_rows_are_exactly_zero_and_never_nan():
    rng = np.random.default_rng(6)
    q, k, v, *_ = random_inputs(rng, 10)
    padding = np.ones((BATCH, 10), bool)
    padding[0] = False  # a row with no real token at all
    padding[1, 7:] = False
    global_mask = np.zeros((BATCH, 10), bool)
    global_mask[:, 8] = True  # global only on a padded token: ignored
    out = np.asarray(
        longformer_attention(
            q, k, v, window=1, padding_mask=padding, global_mask=global_mask
        )
    )
    assert np.all(np.isfinite(out))
    assert np.all(out[~padding] == 0.0)
    expected = longformer_attention_reference(
        q, k, v, window=1, padding_mask=padding, global_mask=global_mask
    )
    assert max_abs_error(out, expected) <= FLOAT32_ATOL


@pytest.mark.backends
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_dtypes(dtype):
    rng = np.random.default_rng(7)
    length, heads, head_dim = 40, 3, 16
    q, k, v, *_ = random_inputs(rng, length, heads=heads, head_dim=head_dim)
    # The oracle sees the same rounded inputs, so the bound is the dtype's.
    rounded = [np.asarray(ops.cast(ops.cast(t, dtype), "float32")) for t in (q, k, v)]
    kwargs = dict(
        window=3,
        dilation=[1, 2, 1],
        padding_mask=padding_pattern("right", BATCH, length),
        global_mask=global_pattern("many", BATCH, length, 3),
    )
    out = longformer_attention(*(ops.cast(t, dtype) for t in (q, k, v)), **kwargs)
    assert keras.backend.standardize_dtype(out.dtype) == dtype
    out = np.asarray(ops.cast(out, "float32"))
    assert np.all(np.isfinite(out))
    expected = longformer_attention_reference(*rounded, **kwargs)
    assert max_abs_error(out, expected) <= LOW_PRECISION_ATOL[dtype]


@pytest.mark.backends
def test_float16_large_scores_do_not_overflow():
    rng = np.random.default_rng(8)
    q, k, v, *_ = random_inputs(rng, 16, head_dim=16)
    q = q * 30.0  # scores of several hundred: exp overflows float16
    kwargs = dict(window=2, padding_mask=padding_pattern("right", BATCH, 16),
                  global_mask=global_pattern("first", BATCH, 16))
    out = longformer_attention(*(ops.cast(t, "float16") for t in (q, k, v)), **kwargs)
    out = np.asarray(ops.cast(out, "float32"))
    assert np.all(np.isfinite(out))
    # Not only finite: the answer, against the oracle on the same rounded
    # inputs. Scores of several hundred carry float16 rounding of ~0.1, which
    # moves the softmax of near-tied keys: a looser bound than for small scores.
    rounded = [np.asarray(ops.cast(ops.cast(t, "float16"), "float32")) for t in (q, k, v)]
    expected = longformer_attention_reference(*rounded, **kwargs)
    assert max_abs_error(out, expected) <= LARGE_SCORE_FLOAT16_ATOL


def dense_keras_attention(q, k, v, gq, gk, gv, local, global_rows, global_mask, padding):
    """The same contract with dense [T, T] masks, in keras.ops (tests only)."""

    def attend(q, k, v, allowed):
        scores = ops.einsum("bqnh,bknh->bnqk", q, k) / np.sqrt(q.shape[-1])
        scores = ops.where(allowed, scores, -1e9)
        probs = ops.where(allowed, ops.softmax(scores, axis=-1), 0.0)
        return ops.einsum("bnqk,bknh->bqnh", probs, v)

    out = ops.where(
        global_mask[:, :, None, None],
        attend(gq, gk, gv, global_rows),
        attend(q, k, v, local),
    )
    return ops.where(padding[:, :, None, None], out, 0.0)


@pytest.mark.parametrize("causal", [False, True])
def test_gradients_match_dense_formulation(causal):
    rng = np.random.default_rng(9)
    length, window, dilation = 11, 2, [1, 2, 3]
    tensors = [tf.Variable(t) for t in random_inputs(rng, length)]
    padding = padding_pattern("right", BATCH, length)
    global_mask = global_pattern("middle", BATCH, length)
    global_mask[0, 0] = True
    local, global_rows = allowed_keys(
        length,
        window=window,
        dilation=dilation,
        causal=causal,
        padding_mask=padding,
        global_mask=global_mask,
    )
    weights = rng.standard_normal((BATCH, length, HEADS, HEAD_DIM)).astype("float32")

    def gradients(fn):
        with tf.GradientTape() as tape:
            loss = ops.sum(fn(*tensors) * weights)
        return tape.gradient(loss, tensors)

    ours = gradients(
        lambda q, k, v, gq, gk, gv: longformer_attention(
            q,
            k,
            v,
            window=window,
            dilation=dilation,
            causal=causal,
            padding_mask=padding,
            global_mask=global_mask,
            global_query=gq,
            global_key=gk,
            global_value=gv,
        )
    )
    dense = gradients(
        lambda *t: dense_keras_attention(
            *t, local, global_rows, global_mask & padding, padding
        )
    )
    for name, a, b in zip(["q", "k", "v", "gq", "gk", "gv"], ours, dense):
        assert a is not None, name
        assert float(np.max(np.abs(np.asarray(b)))) > 0, name
        assert max_abs_error(a, np.asarray(b)) <= FLOAT32_ATOL, name


def test_one_trace_serves_every_batch_size_length_and_global_count():
    rng = np.random.default_rng(10)
    spec = tf.TensorSpec([None, None, HEADS, HEAD_DIM], tf.float32)
    mask_spec = tf.TensorSpec([None, None], tf.bool)

    @tf.function(input_signature=[spec, spec, spec, mask_spec, mask_spec])
    def traced(q, k, v, padding, global_mask):
        return longformer_attention(
            q,
            k,
            v,
            window=3,
            dilation=[1, 2, 3],
            padding_mask=padding,
            global_mask=global_mask,
        )

    cases = [(batch, length, name) for batch in (1, 2, 5) for length in (1, 2, 4, 7, 8, 30)
             for name in ("none", "first", "many")]
    for batch, length, name in cases:
        q, k, v, *_ = random_inputs(rng, length, batch=batch)
        padding = padding_pattern("holes", batch, length)
        global_mask = global_pattern(name, batch, length, 3)
        if global_mask is None:
            global_mask = np.zeros((batch, length), bool)
        actual = traced(q, k, v, padding, global_mask)
        expected = longformer_attention_reference(
            q,
            k,
            v,
            window=3,
            dilation=[1, 2, 3],
            padding_mask=padding,
            global_mask=global_mask,
        )
        assert max_abs_error(actual, expected) <= FLOAT32_ATOL
    assert traced.experimental_get_tracing_count() == 1


@pytest.mark.backends
@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(window=-1), "Received: window=-1"),
        (dict(window=2.5), "Received: window=2.5"),
        (dict(window=True), "Received: window=True"),
        (dict(window=2, dilation=0), "Received: dilation=0"),
        (dict(window=2, dilation=[1, 2]), "Received: dilation=[1, 2]"),
        (dict(window=2, causal="yes"), "Received: causal='yes'"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    q = np.zeros((1, 4, HEADS, HEAD_DIM), "float32")
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        longformer_attention(q, q, q, **kwargs)


@pytest.mark.backends
def test_bad_shapes_are_named():
    q = np.zeros((1, 4, HEADS, HEAD_DIM), "float32")
    with pytest.raises(ValueError, match="Received: query.shape=\\(4, 3, 4\\)"):
        longformer_attention(q[0], q[0], q[0], window=1)
    with pytest.raises(ValueError, match="Received: key.shape=\\(1, 5, 3, 4\\)"):
        longformer_attention(q, np.zeros((1, 5, HEADS, HEAD_DIM), "float32"), q, window=1)
    with pytest.raises(ValueError, match="Received: global_mask.shape=\\(4,\\)"):
        longformer_attention(q, q, q, window=1, global_mask=np.ones(4, bool))
    with pytest.raises(ValueError, match="Received: padding_mask.shape=\\(1, 5\\)"):
        longformer_attention(q, q, q, window=1, padding_mask=np.ones((1, 5), bool))
    with pytest.raises(ValueError, match="Received: global_mask.shape=\\(2, 4\\)"):
        longformer_attention(q, q, q, window=1, global_mask=np.ones((2, 4), bool))


LONG_SCRIPT = textwrap.dedent(
    """
    import os, resource, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np
    sys.path.insert(0, {tests!r})
    from keras_longformer.ops import longformer_attention
    from reference import longformer_attention_reference
    length, window, heads, head_dim = 65536, 64, 2, 16
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, length, heads, head_dim)).astype("float32")
               for _ in range(3))
    global_mask = np.zeros((1, length), bool)
    out = np.asarray(longformer_attention(q, k, v, window=window, dilation=[1, 2],
                                          global_mask=global_mask))
    # Rows [start, stop) only see keys inside [start - 2w, stop + 2w) (dilation
    # 2 doubles the reach): the oracle on that slice gives their exact output.
    error = 0.0
    for start in (0, 30000, length - 200):
        stop = start + 200
        lo, hi = max(0, start - 2 * window), min(length, stop + 2 * window)
        expected = longformer_attention_reference(
            q[:, lo:hi], k[:, lo:hi], v[:, lo:hi], window=window, dilation=[1, 2])
        error = max(error, float(np.abs(out[:, start:stop] - expected[:, start - lo:stop - lo]).max()))
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(error, peak_gb, np.isfinite(out).all())
    """
)


def test_65536_tokens_run_in_linear_memory():
    """A [T, T] score tensor at 65,536 tokens would need 32 GiB per head."""
    tests = os.path.dirname(os.path.abspath(__file__))
    result = subprocess.run(
        [sys.executable, "-c", LONG_SCRIPT.format(tests=tests)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    error, peak_gb, finite = result.stdout.split()[-3:]
    assert finite == "True"
    assert float(error) <= FLOAT32_ATOL
    assert float(peak_gb) < 4.0, f"peak memory {peak_gb} GiB"


@pytest.mark.backends
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(scale=0), "Received: scale=0"),
        (dict(scale=-0.5), "Received: scale=-0.5"),
        (dict(scale="big"), "Received: scale='big'"),
        (dict(scale=float("inf")), "Received: scale=inf"),
        (dict(padding_mask=np.full((BATCH, 6), 0.5, "float32")), "padding_mask with the value 0.5"),
        (dict(global_mask=np.array([[1, 0, np.nan, 0, 0, 0]] * BATCH, "float32")), "global_mask with the value nan"),
    ],
)
def test_bad_scale_and_mask_values_are_named(kwargs, message):
    q, k, v, *_ = random_inputs(np.random.default_rng(0), 6)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        longformer_attention(q, k, v, window=1, **kwargs)


@pytest.mark.backends
def test_float_masks_of_zeros_and_ones_are_masks():
    q, k, v, *_ = random_inputs(np.random.default_rng(0), 6)
    padding = padding_pattern("right", BATCH, 6)
    glob = global_pattern("first", BATCH, 6)
    as_float = longformer_attention(
        q, k, v, window=1, padding_mask=padding.astype("float32"), global_mask=glob.astype("float32")
    )
    as_bool = longformer_attention(q, k, v, window=1, padding_mask=padding, global_mask=glob)
    np.testing.assert_array_equal(np.asarray(as_float), np.asarray(as_bool))


@pytest.mark.backends
@pytest.mark.parametrize("name", ["key", "value", "global_query", "global_key", "global_value"])
def test_mixed_dtypes_are_named(name):
    q, k, v, gq, gk, gv = random_inputs(np.random.default_rng(0), 6)
    tensors = dict(key=k, value=v, global_query=gq, global_key=gk, global_value=gv)
    tensors[name] = tensors[name].astype("float16")
    with pytest.raises(ValueError, match=f"Received: {name}.dtype=float16"):
        longformer_attention(q, window=1, **tensors)


@pytest.mark.backends
def test_length_zero_is_named():
    empty = np.zeros((BATCH, 0, HEADS, HEAD_DIM), "float32")
    with pytest.raises(ValueError, match="at least one token"):
        longformer_attention(empty, empty, empty, window=1)


@pytest.mark.backends
@pytest.mark.parametrize("causal, dilation", [(False, 1), (True, 1), (False, [1, 2, 3]), (True, [2, 1, 3])])
def test_all_padding_rows_are_zero_never_nan(causal, dilation):
    q, k, v, *_ = random_inputs(np.random.default_rng(0), 9)
    padding = np.ones((BATCH, 9), bool)
    padding[1] = False  # a row with no real token at all
    glob = global_pattern("first", BATCH, 9)
    out = np.asarray(
        longformer_attention(
            q, k, v, window=2, dilation=dilation, causal=causal, padding_mask=padding, global_mask=glob
        )
    )
    assert np.all(out[1] == 0.0)
    expected = longformer_attention_reference(
        q, k, v, window=2, dilation=dilation, causal=causal, padding_mask=padding, global_mask=glob
    )
    assert max_abs_error(out, expected) <= FLOAT32_ATOL
