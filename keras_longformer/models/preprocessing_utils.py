"""Small TensorFlow helpers shared by the Longformer preprocessors.

Preprocessing runs in TensorFlow whatever the Keras backend, as keras-hub's
does: inside `tf.data` it is traced into the pipeline's graph, and eager
calls return backend tensors through keras-hub's `preprocessing_function`.
Token ids therefore travel as `tf.RaggedTensor` `[B, None]` (or a dense
`[S]` for a single unbatched string) between the steps here.
"""

import numpy as np
import tensorflow as tf

from keras_longformer.arguments import check_bool
from keras_longformer.arguments import check_int

# Label of positions a loss ignores (special tokens, padding, sub-word
# continuations), as Hugging Face and `ignore_class=-100` use it.
IGNORED_LABEL = -100


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {', '.join(repr(c) for c in choices)}. "
            f"Received: {name}={value!r}"
        )
    return value


def check_preprocessor_arguments(sequence_length, truncate, truncate_choices, pad_to_sequence_length):
    check_int("sequence_length", sequence_length, 2)
    check_choice("truncate", truncate, truncate_choices)
    check_bool("pad_to_sequence_length", pad_to_sequence_length)


def as_tf_ids(ids):
    """A tokenizer's output as a `tf.RaggedTensor` `[B, None]` or dense `[S]` int32.

    Eager calls of keras-hub tokenizers return Python lists (batches) or
    numpy arrays (one string); inside `tf.data` they return tensors.
    """
    if isinstance(ids, tf.RaggedTensor):
        return tf.cast(ids, "int32")
    if isinstance(ids, tf.Tensor):
        return tf.cast(ids, "int32")
    if isinstance(ids, np.ndarray) and ids.dtype != object:
        return tf.constant(ids, "int32")
    rows = [np.asarray(row, "int32").reshape(-1) for row in ids]
    lengths = np.array([len(row) for row in rows], "int64")
    values = np.concatenate(rows) if rows else np.zeros((0,), "int32")
    return tf.RaggedTensor.from_row_lengths(values, lengths)


def tokenize(tokenizer, text):
    return as_tf_ids(tokenizer(text))


def tokenize_segments(tokenizer, segments):
    """Token ids of each segment (text, or texts of a pair), batch sizes checked.

    tensorflow-text's trimmers crash the process on segments of different
    batch sizes; this is a `ValueError` (an `InvalidArgumentError` inside
    `tf.data`) naming the sizes instead.
    """
    ids = [tokenize(tokenizer, segment) for segment in segments]
    if len(ids) > 1:
        sizes = [tf.shape(row_lengths(i), out_type="int64") for i in ids]
        message = "Every segment must hold the same number of texts."
        if tf.executing_eagerly():
            received = [tuple(int(n) for n in size) for size in sizes]
            if len(set(received)) > 1:
                raise ValueError(f"{message} Received: batch shapes {received}")
        else:
            for size in sizes[1:]:
                tf.debugging.assert_equal(size, sizes[0], message=message)
    return ids


def row_lengths(ids):
    """Tokens per row: `[B]` int32 for a batch, a scalar for one sequence."""
    if isinstance(ids, tf.RaggedTensor):
        return tf.cast(ids.row_lengths(), "int32")
    return tf.shape(ids)[-1]


def packed_lengths(segments, num_special_tokens, sequence_length):
    """Real tokens of each packed row (what the packer keeps after truncation)."""
    total = tf.add_n([row_lengths(s) for s in segments]) + num_special_tokens
    return tf.minimum(total, sequence_length)


def refuse_longer_than(segments, num_special_tokens, sequence_length):
    """Raises when a packed row would not fit in `sequence_length` tokens.

    Eagerly a `ValueError` before any packing; inside `tf.data` (graph mode)
    an `InvalidArgumentError` with the same message when the batch runs.
    """
    total = tf.add_n([row_lengths(s) for s in segments]) + num_special_tokens
    longest = tf.reduce_max(tf.reshape(total, [-1]))
    message = (
        f"Text longer than `sequence_length` with truncate='error': a packed "
        f"sequence (special tokens included) must have at most "
        f"sequence_length={sequence_length} tokens."
    )
    if tf.executing_eagerly():
        if int(longest) > sequence_length:
            raise ValueError(f"{message} Received: {int(longest)} tokens")
        return
    tf.debugging.assert_less_equal(longest, sequence_length, message=message)


def padding_mask_from_lengths(lengths, token_ids):
    """Bool like `token_ids`, true on the first `lengths[b]` positions of row `b`.

    From the lengths, not from `token_ids != pad_token_id`: a literal
    `<pad>` inside the text is a real token, as Hugging Face counts it.
    """
    positions = tf.range(tf.shape(token_ids)[-1], dtype=lengths.dtype)
    return positions < tf.expand_dims(lengths, -1)


def first_token_global_mask(token_ids):
    """Global attention on the first token (`<s>`) of every row."""
    positions = tf.range(tf.shape(token_ids)[-1])
    return tf.broadcast_to(tf.equal(positions, 0), tf.shape(token_ids))


def question_global_mask(token_ids, padding_mask, end_token_id):
    """Global attention on every token before the first `</s>`: `<s>` and the question.

    Hugging Face's `LongformerForQuestionAnswering` computes the same mask
    (`_compute_global_attention_mask` with `before_sep_token=True`) from
    the index of the first separator token.
    """
    seen_end = tf.cumsum(tf.cast(tf.equal(token_ids, end_token_id), "int32"), axis=-1)
    return tf.logical_and(tf.equal(seen_end, 0), padding_mask)


def no_global_mask(token_ids):
    return tf.zeros_like(token_ids, dtype="bool")


def trim_to_longest(padding_mask, *tensors):
    """Cuts the padding columns every row of the batch has.

    The packers pad to `sequence_length`; a batch of short texts then runs
    at the length of its longest row instead (the backbone accepts any
    length), which is what makes a 4,096-token default affordable.
    """
    lengths = tf.reduce_sum(tf.cast(padding_mask, "int32"), axis=-1)
    longest = tf.maximum(tf.reduce_max(tf.reshape(lengths, [-1])), 1)
    return tuple(None if t is None else t[..., :longest] for t in tensors)


def features(token_ids, padding_mask, global_mask, pad_to_sequence_length, **extra):
    """The backbone's input dict, trimmed to the longest row unless asked not to."""
    if not pad_to_sequence_length:
        token_ids, global_mask, padding_mask = trim_to_longest(
            padding_mask, token_ids, global_mask, padding_mask
        )
    return {
        "token_ids": token_ids,
        "padding_mask": padding_mask,
        "global_mask": global_mask,
        **extra,
    }


def is_dataset(x):
    """Whether `x` is a dataset or an iterator (what `fit` reads as is)."""
    return isinstance(x, tf.data.Dataset) or hasattr(x, "__next__")


def shuffled_batches(x, y, sample_weight, batch_size):
    """In-memory samples as a `tf.data.Dataset`, reshuffled every epoch, batched.

    keras-hub batches in-memory samples unshuffled (and Keras then warns that
    `shuffle=True` is ignored): the tasks shuffle through this instead.
    """
    import keras

    def sliceable(value):
        if isinstance(value, (tf.Tensor, tf.RaggedTensor)) or not keras.ops.is_tensor(value):
            return value
        return keras.ops.convert_to_numpy(value)  # a torch or JAX tensor

    samples = keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
    samples = keras.tree.map_structure(sliceable, samples)
    dataset = tf.data.Dataset.from_tensor_slices(samples)
    count = int(dataset.cardinality())
    return dataset.shuffle(max(count, 1), reshuffle_each_iteration=True).batch(batch_size or 32)
