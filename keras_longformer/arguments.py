"""Argument checks shared by the op, layers and models.

Each raises a `ValueError` that names the argument and echoes what it
received (`Received: window=-1`), before any work is done.
"""


def check_int(name, value, minimum):
    """An int (not a bool) >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}. Received: {name}={value!r}")
    return value


def check_rate(name, value):
    """A float in `[0, 1)`, such as a dropout rate; returned as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"`{name}` must be a float in [0, 1). Received: {name}={value!r}")
    return float(value)


def check_bool(name, value):
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be a bool. Received: {name}={value!r}")
    return value


def check_dilation(dilation, num_heads=None):
    """An int >= 1, or a list of `num_heads` ints >= 1 (one per head).

    Returns the int, or the list as a list.
    """
    per_head = isinstance(dilation, (list, tuple))
    values = list(dilation) if per_head else [dilation]
    ok = len(values) > 0 and all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in values
    )
    if per_head and num_heads is not None:
        ok = ok and len(values) == num_heads
    if not ok:
        heads = f"{num_heads} " if num_heads is not None else ""
        raise ValueError(
            f"`dilation` must be an int >= 1 or a list of {heads}ints >= 1, one "
            f"per head. Received: dilation={dilation!r}"
        )
    return values if per_head else dilation
