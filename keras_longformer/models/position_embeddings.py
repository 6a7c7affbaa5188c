import keras
import numpy as np

from keras_longformer.arguments import check_int
from keras_longformer.models.longformer_backbone import LongformerBackbone


def tile_positions(rows, reserved, max_sequence_length):
    """A position table of `reserved + max_sequence_length` rows, learned rows tiled.

    The paper's recipe (section 5): the first `reserved` rows (RoBERTa's
    `pad_token_id + 1` rows that no real token reads) are kept, and the
    learned rows after them are repeated block after block, so position
    `k` of the long table holds the learned row `k mod P` of a table with
    `P` learned rows. Cut to `max_sequence_length` when that is shorter.

    Args:
        rows: `[reserved + P, D]` numpy array.
        reserved: int >= 0, the leading rows kept as they are.
        max_sequence_length: int >= 1, learned rows of the result.

    Returns:
        `[reserved + max_sequence_length, D]` numpy array.
    """
    learned = rows[reserved:]
    repeats = -(-max_sequence_length // len(learned))
    return np.concatenate([rows[:reserved], np.tile(learned, (repeats, 1))[:max_sequence_length]])


def extend_position_embeddings(backbone, new_max_length):
    """A copy of `backbone` that reads `new_max_length` tokens, positions copied.

    The paper's recipe (section 5) for turning a RoBERTa-style model with
    `max_sequence_length=512` into a long one: the new position table
    repeats the learned positions, block after block, so position
    `p > 512` starts from the embedding of `p mod 512`, which the paper
    shows works far better than random positions. The `pad_token_id + 1`
    reserved rows are kept as they are. Every other weight is copied
    unchanged. A `new_max_length` smaller than the current one truncates.

    Args:
        backbone: a `LongformerBackbone`.
        new_max_length: int >= 1, the new `max_sequence_length`.

    Returns:
        A new `LongformerBackbone`; `backbone` is not modified.

    Example:

    >>> long = extend_position_embeddings(short_backbone, 4096)
    >>> long.max_sequence_length
    4096

    Reference:
    - [Beltagy, Peters, Cohan, Longformer: The Long-Document Transformer,
      2020](https://arxiv.org/abs/2004.05150)
    """
    if not isinstance(backbone, LongformerBackbone):
        raise ValueError(
            f"`backbone` must be a LongformerBackbone. Received: {backbone!r}"
        )
    check_int("new_max_length", new_max_length, 1)
    return rebuilt(backbone, max_sequence_length=new_max_length)


def rebuilt(backbone, **changes):
    """A new `LongformerBackbone` of `backbone`'s config with `changes`, weights copied.

    Every weight is copied; the position table is tiled
    (`tile_positions`) to a changed `max_sequence_length`.
    """
    new = LongformerBackbone.from_config({**backbone.get_config(), **changes})
    old_table = backbone.embeddings.position_embedding.embeddings
    new_table = new.embeddings.position_embedding.embeddings
    old_weights = {variable.path: variable for variable in backbone.weights}
    for fresh in new.weights:
        if fresh is not new_table:
            fresh.assign(old_weights[fresh.path])
    new.pooler_dense.trainable = backbone.pooler_dense.trainable
    old_rows = keras.ops.convert_to_numpy(old_table)
    rows = tile_positions(old_rows, backbone.pad_token_id + 1, new.max_sequence_length)
    new_table.assign(rows.astype(new_table.dtype))
    return new
