"""Mask helpers for Longformer attention, as small composable predicates.

Every helper returns a boolean tensor in which `True` means "may attend".
None of them ever materialises a `[T, T]` tensor: the band is described in
block coordinates (`[block, span]`) and global attention in slot
coordinates (`[T, G]` or `[G, T]`).
"""

from keras import ops


def as_bool_mask(mask, batch_size, length, default, name):
    """Returns `mask` as a `[B, T]` bool tensor, or `default` everywhere.

    Integer masks count non-zero entries as `True`, so 0/1 masks of any
    integer width work as well as bools.
    """
    if mask is None:
        return ops.full((batch_size, length), default, dtype="bool")
    mask = ops.convert_to_tensor(mask)
    expected = (batch_size, length)
    if len(mask.shape) != 2 or any(
        isinstance(want, int) and got is not None and got != want
        for got, want in zip(mask.shape, expected)
    ):
        shown = tuple(d if isinstance(d, int) else None for d in expected)
        raise ValueError(
            f"`{name}` must have shape [batch, seq] = {shown}, matching `query`. "
            f"Received: {name}.shape={tuple(mask.shape)}"
        )
    if mask.dtype == "bool":
        return mask
    return ops.not_equal(mask, ops.zeros((), dtype=mask.dtype))


def band_mask(block_size, window, causal, halo):
    """Which keys of its span each query of block `k` may see.

    Queries sit in block `k` at offset `a` in `[0, block_size)`; the span
    holds the key blocks `k - halo .. k + halo` (`k - halo .. k` when
    causal), so span slot `s` is the key at relative position
    `s - halo * block_size - a`. The band keeps relative positions in
    `[-window, window]`, or `[-window, 0]` when causal.

    Returns:
        A `[block_size, span]` bool tensor, `span = (2 * halo + 1) *
        block_size` (`(halo + 1) * block_size` when causal).
    """
    span_blocks = halo + 1 + (0 if causal else halo)
    query_offset = ops.expand_dims(ops.arange(block_size, dtype="int32"), 1)
    span_slot = ops.expand_dims(
        ops.arange(span_blocks * block_size, dtype="int32"), 0
    )
    relative = span_slot - halo * block_size - query_offset
    upper = 0 if causal else window
    return ops.logical_and(relative >= -window, relative <= upper)


def not_after(query_positions, key_positions):
    """Causal predicate: key position <= query position, broadcast."""
    return ops.less_equal(key_positions, query_positions)
