"""Dense numpy oracle for `longformer_attention`, written from the contract.

It builds the full `[T, T]` visibility of every head and row the slow,
obvious way (tests only, small T) and computes softmax in float64.
"""

import numpy as np


def allowed_keys(
    length,
    *,
    window,
    dilation,
    causal,
    padding_mask,
    global_mask,
):
    """Returns `(local, global_rows)`, both `[B, N, T, T]` bool.

    `local[b, n, i, j]`: non-global query `i` may attend key `j` (scored
    with the ordinary projections). `global_rows[b, n, i, j]`: global query
    `i` may attend key `j` (scored with the global projections).
    """
    padding_mask = np.asarray(padding_mask, bool)
    global_mask = np.asarray(global_mask, bool) & padding_mask
    batch_size = padding_mask.shape[0]
    heads = len(dilation)
    i = np.arange(length)[:, None]
    j = np.arange(length)[None, :]
    local = np.zeros((batch_size, heads, length, length), bool)
    global_rows = np.zeros_like(local)
    for n, d in enumerate(dilation):
        offset = j - i
        in_band = (offset % d == 0) & (np.abs(offset) <= window * d)
        if causal:
            in_band &= offset <= 0
        not_later = (j <= i) if causal else np.ones_like(in_band)
        for b in range(batch_size):
            real_key = padding_mask[b][None, :]
            global_key = global_mask[b][None, :]
            local[b, n] = real_key & ((in_band & ~global_key) | (global_key & not_later))
            global_rows[b, n] = real_key & not_later
    return local, global_rows


def longformer_attention_reference(
    query,
    key,
    value,
    *,
    window,
    dilation=1,
    causal=False,
    padding_mask=None,
    global_mask=None,
    global_query=None,
    global_key=None,
    global_value=None,
    scale=None,
):
    """float64 dense reference: same arguments and output as the op."""
    q, k, v = (np.asarray(t, np.float64) for t in (query, key, value))
    batch_size, length, heads, head_dim = q.shape
    gq = q if global_query is None else np.asarray(global_query, np.float64)
    gk = k if global_key is None else np.asarray(global_key, np.float64)
    gv = v if global_value is None else np.asarray(global_value, np.float64)
    if padding_mask is None:
        padding_mask = np.ones((batch_size, length), bool)
    if global_mask is None:
        global_mask = np.zeros((batch_size, length), bool)
    padding_mask = np.asarray(padding_mask).astype(bool)
    global_mask = np.asarray(global_mask).astype(bool) & padding_mask
    dilation = dilation if isinstance(dilation, (list, tuple)) else [dilation] * heads
    scale = 1.0 / np.sqrt(head_dim) if scale is None else scale
    local, global_rows = allowed_keys(
        length,
        window=window,
        dilation=dilation,
        causal=causal,
        padding_mask=padding_mask,
        global_mask=global_mask,
    )
    local_out = _masked_attention(q, k, v, local, scale)
    global_out = _masked_attention(gq, gk, gv, global_rows, scale)
    out = np.where(global_mask[:, :, None, None], global_out, local_out)
    return np.where(padding_mask[:, :, None, None], out, 0.0)


def _masked_attention(q, k, v, allowed, scale):
    scores = np.einsum("bqnh,bknh->bnqk", q, k) * scale
    scores = np.where(allowed, scores, -np.inf)
    row_max = scores.max(axis=-1, keepdims=True)
    row_max = np.where(np.isfinite(row_max), row_max, 0.0)
    weights = np.where(allowed, np.exp(scores - row_max), 0.0)
    total = weights.sum(axis=-1, keepdims=True)
    probs = weights / np.where(total > 0, total, 1.0)
    return np.einsum("bnqk,bknh->bqnh", probs, v)
