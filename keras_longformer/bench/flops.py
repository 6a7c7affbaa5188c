"""Useful FLOPs of one Longformer layer, and the matmul rates it is judged by.

The limit a path is judged against is its useful FLOPs over the matmul rate
this machine reaches in the same dtype. Useful FLOPs count only what the math
needs (DESIGN.md, "Useful FLOPs"); work a blocked kernel computes and throws
away (keys outside the band, padding to blocks) does not count.
"""

import statistics
import time


def rate_shapes(hidden, quick=False):
    """Shapes the matmul rate is measured on; the best of them is the limit:
    a large square product, and the layer's own projection shapes at 4,096
    tokens (one projection, and q/k/v fused). Smaller with `quick`."""
    size, rows = (1024, 1024) if quick else (2048, 4096)
    return [(size, size, size), (rows, hidden, hidden), (rows, hidden, 3 * hidden)]


def band_pairs(length, window):
    """Exact number of (query, key) pairs with `|i - j| <= window`, both in
    `[0, length)`: `T * (2w + 1)` less the keys that fall off either end."""
    w = min(window, length - 1)
    return length * (2 * w + 1) - w * (w + 1)


def useful_flops(*, length, hidden, heads, head_dim, window, num_global, batch=1):
    """FLOPs of one forward pass that the math needs (multiply-add = 2).

    - the query, key, value and output projections, `T x D x (N * H)`
      each, and with global tokens the global key and value every global
      query reads (six in all; four without global tokens);
    - the global query projection on the `G` global rows only;
    - the band, `2w + 1` keys per query within the sequence, in two matmuls
      (scores and weighted values);
    - the global rows (each global query against every key) and columns
      (each other query against the `G` global keys), two matmuls each.
    """
    inner = heads * head_dim
    g = min(num_global, length)
    projections = (6 if g else 4) * 2 * length * hidden * inner
    global_query_projection = 2 * g * hidden * inner
    band = 2 * 2 * band_pairs(length, window) * inner
    global_rows = 2 * 2 * g * length * inner
    global_columns = 2 * 2 * (length - g) * g * inner
    total = projections + global_query_projection + band + global_rows + global_columns
    return batch * total


def next_token_flops(*, hidden, window, vocabulary, batch=1):
    """FLOPs of one cached decoding step of a one-layer causal LM: the new
    token's query, key, value and output projections, its `w + 1` keys in
    two matmuls, the feed-forward (`4 D` wide) and the decoder."""
    projections = 4 * 2 * hidden * hidden
    attention = 2 * 2 * (window + 1) * hidden
    feed_forward = 2 * 2 * hidden * 4 * hidden
    decoder = 2 * hidden * vocabulary
    return batch * (projections + attention + feed_forward + decoder)


def training_flops(forward_flops):
    """Forward plus backward: the backward pass of a matmul is two matmuls
    of the same size (gradients of both operands), so 3x the forward."""
    return 3 * forward_flops


def measure_matmul_rates(hidden, dtypes=("float32", "bfloat16"), repeats=5, warmup=2, quick=False):
    """Best measured TensorFlow matmul rate (FLOP/s) per dtype.

    Returns:
        `{dtype: {"flops_per_second", "shape", "by_shape",
        "flops_per_cpu_second"}}`, where `by_shape` maps `"MxKxN"` to the
        median rate of that shape, and `flops_per_cpu_second` is the best
        rate per second of process CPU time (all threads), the figure that
        moves least with other load on a shared machine.
    """
    import tensorflow as tf

    rates = {}
    for dtype in dtypes:

        def product(m, k, n, dtype=dtype):
            a = tf.random.normal((m, k), dtype=dtype)
            b = tf.random.normal((k, n), dtype=dtype)
            compiled = tf.function(lambda: tf.matmul(a, b))
            return lambda: compiled().numpy()

        rates[dtype] = _best_rate(product, rate_shapes(hidden, quick), repeats, warmup)
    return rates


def measure_onnxruntime_matmul_rate(hidden, repeats=5, warmup=2, quick=False):
    """onnxruntime's own float32 matmul rate, on the provider our exported
    layer gets (`onnx_session(provider="auto")`), same shapes as above.

    Each runtime brings its own matmul library (oneDNN or Eigen in
    TensorFlow, MLAS or cuBLAS in onnxruntime): the exported layer cannot run
    faster than its runtime's matmuls, so its time is also judged against
    this rate. The weight is an initializer, as in the exported layer.

    Returns:
        `{"flops_per_second", "shape", "by_shape", "flops_per_cpu_second",
        "provider"}`.
    """
    import tempfile

    import numpy as np
    import onnx
    from onnx import helper

    from keras_longformer.export import onnx_session

    providers = []
    with tempfile.TemporaryDirectory(prefix="keras_longformer_rate_") as scratch:

        def product(m, k, n):
            rng = np.random.default_rng(0)
            weight = onnx.numpy_helper.from_array(
                rng.standard_normal((k, n)).astype("float32"), "b"
            )
            graph = helper.make_graph(
                [helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul",
                [helper.make_tensor_value_info("a", onnx.TensorProto.FLOAT, [m, k])],
                [helper.make_tensor_value_info("c", onnx.TensorProto.FLOAT, [m, n])],
                [weight],
            )
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
            # The IR version onnxruntime reads, whatever the onnx package writes.
            model.ir_version = 8
            path = f"{scratch}/matmul_{m}x{k}x{n}.onnx"
            onnx.save(model, path)
            session = onnx_session(path, provider="auto")
            providers.append(session.get_providers()[0])
            feeds = {"a": rng.standard_normal((m, k)).astype("float32")}
            return lambda: session.run(None, feeds)

        rate = _best_rate(product, rate_shapes(hidden, quick), repeats, warmup)
    return dict(rate, provider=providers[0])


def _best_rate(make_product, shapes, repeats, warmup):
    """Median FLOP/s of `make_product(m, k, n)()` per shape, and the best.

    Returns:
        `{"flops_per_second", "shape", "by_shape", "flops_per_cpu_second"}`.
    """
    from keras_longformer.timing import time_calls

    by_shape, per_cpu_second = {}, {}
    for m, k, n in shapes:
        product = make_product(m, k, n)
        cpu_times = []

        def step():
            start = time.process_time()
            product()
            cpu_times.append(time.process_time() - start)

        timing = time_calls(step, repeats=repeats, warmup=warmup)
        flops = 2 * m * k * n
        by_shape[f"{m}x{k}x{n}"] = flops / timing.median
        per_cpu_second[f"{m}x{k}x{n}"] = flops / statistics.median(cpu_times[warmup:])
    best = max(by_shape, key=by_shape.get)
    return dict(
        flops_per_second=by_shape[best], shape=best, by_shape=by_shape,
        flops_per_cpu_second=max(per_cpu_second.values()),
    )
