"""The task preprocessors against Hugging Face's tokenizer, id for id and mask for mask."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from bpe_fixtures import checkpoint_dirs
from bpe_fixtures import hf_tokenizer
from bpe_fixtures import varied_texts
from keras_longformer.models.longformer_causal_lm_preprocessor import LongformerCausalLMPreprocessor
from keras_longformer.models.longformer_masked_lm_preprocessor import LongformerMaskedLMPreprocessor
from keras_longformer.models.longformer_question_answerer_preprocessor import (
    LongformerQuestionAnswererPreprocessor,
)
from keras_longformer.models.longformer_text_classifier_preprocessor import (
    LongformerTextClassifierPreprocessor,
)
from keras_longformer.models.longformer_token_classifier_preprocessor import (
    LongformerTokenClassifierPreprocessor,
)
from keras_longformer.models.longformer_tokenizer import LongformerTokenizer

TEXTS = varied_texts(seed=1, count=10, max_words=40)
LENGTH = 48


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    return checkpoint_dirs(str(tmp_path_factory.mktemp("bpe")))["tokenizer_json"]


@pytest.fixture(scope="module")
def tokenizer(directory):
    return LongformerTokenizer.from_huggingface(directory)


@pytest.fixture(scope="module")
def hf(directory):
    return hf_tokenizer(directory)


def numpy(features):
    return {key: keras.ops.convert_to_numpy(value) for key, value in features.items()}


def first_batch(preprocessor, *elements, batch_size=64):
    dataset = tf.data.Dataset.from_tensor_slices(elements).batch(batch_size)
    return next(iter(dataset.map(preprocessor)))


def assert_matches_hf(features, encoding):
    """Our features equal Hugging Face's ids and attention mask, shape included."""
    ids = np.array(encoding["input_ids"])
    np.testing.assert_array_equal(features["token_ids"], ids)
    np.testing.assert_array_equal(features["padding_mask"], np.array(encoding["attention_mask"]) == 1)


def test_classifier_single_texts_equal_hugging_face(tokenizer, hf):
    preprocessor = LongformerTextClassifierPreprocessor(tokenizer, sequence_length=LENGTH)
    features = numpy(preprocessor(TEXTS))
    assert_matches_hf(features, hf(TEXTS, padding=True, truncation=True, max_length=LENGTH))
    # Global attention on <s> only.
    expected_global = np.zeros_like(features["token_ids"], bool)
    expected_global[:, 0] = True
    np.testing.assert_array_equal(features["global_mask"], expected_global)
    # Long texts were truncated, and the batch is no longer than its longest row.
    assert features["token_ids"].shape[1] == LENGTH
    short = numpy(preprocessor(["the dog", "a"]))
    assert short["token_ids"].shape == (2, 4)
    padded = numpy(
        LongformerTextClassifierPreprocessor(
            tokenizer, sequence_length=LENGTH, pad_to_sequence_length=True
        )(["the dog", "a"])
    )
    assert padded["token_ids"].shape == (2, LENGTH)


def test_classifier_pairs_equal_hugging_face(tokenizer, hf):
    # Pair lengths differ, so round-robin and longest-first cut the same tokens.
    first = [t + " short" for t in TEXTS[11:16]]
    second = ["the " + t for t in TEXTS[16:21]]
    preprocessor = LongformerTextClassifierPreprocessor(tokenizer, sequence_length=LENGTH)
    features = numpy(preprocessor(x=(tf.constant(first), tf.constant(second))))
    encoding = hf(first, second, padding=True, truncation="longest_first", max_length=LENGTH)
    lengths_differ = [
        abs(len(hf(a, add_special_tokens=False)["input_ids"]) - len(hf(b, add_special_tokens=False)["input_ids"])) > 1
        for a, b in zip(first, second)
    ]
    keep = np.array(lengths_differ)
    assert keep.sum() >= 3
    ids = np.array(encoding["input_ids"])[keep]
    np.testing.assert_array_equal(features["token_ids"][keep][:, : ids.shape[1]], ids)
    np.testing.assert_array_equal(
        features["padding_mask"][keep][:, : ids.shape[1]], np.array(encoding["attention_mask"])[keep] == 1
    )


def test_classifier_in_tf_data_equals_eager(tokenizer):
    preprocessor = LongformerTextClassifierPreprocessor(tokenizer, sequence_length=LENGTH)
    labels = np.arange(len(TEXTS))
    x, y = first_batch(preprocessor, TEXTS, labels)
    eager = numpy(preprocessor(TEXTS))
    for key in eager:
        np.testing.assert_array_equal(x[key].numpy(), eager[key])
    np.testing.assert_array_equal(y.numpy(), labels)


def hf_question_global_mask(ids):
    from transformers.models.longformer.modeling_longformer import _compute_global_attention_mask
    import torch

    return _compute_global_attention_mask(torch.tensor(ids), 2).numpy()


def test_question_answering_equals_hugging_face(tokenizer, hf):
    questions = ["who wrote it?", "the quick brown fox question", "a", "it's 東京?"]
    contexts = [TEXTS[15], TEXTS[16], "b", TEXTS[18] * 3]
    preprocessor = LongformerQuestionAnswererPreprocessor(tokenizer, sequence_length=LENGTH)
    features = numpy(preprocessor((questions, contexts)))
    encoding = hf(questions, contexts, padding=True, truncation="only_second", max_length=LENGTH)
    assert_matches_hf(features, encoding)
    expected_global = hf_question_global_mask(encoding["input_ids"])
    np.testing.assert_array_equal(features["global_mask"], expected_global)
    assert features["global_mask"][0].sum() == 1 + len(hf(questions[0], add_special_tokens=False)["input_ids"])
    # The same through tf.data, from `((question, context), y)` elements.
    (x, y) = first_batch(preprocessor, (questions, contexts), np.arange(4))
    for key in features:
        np.testing.assert_array_equal(x[key].numpy(), features[key])


def hf_token_labels(encoding, word_labels):
    rows = []
    for b, labels in enumerate(word_labels):
        previous, row = None, []
        for word in encoding.word_ids(b):
            row.append(-100 if word is None or word == previous else labels[word])
            previous = word
        rows.append(row)
    return np.array(rows)


def test_token_classification_aligns_labels_as_hugging_face(tokenizer, directory):
    hf = hf_tokenizer(directory, add_prefix_space=True)
    rng = np.random.default_rng(0)
    words = [text.split() for text in TEXTS[11:16]] + [["東京", "it's", "12345"]]
    words = [w or ["x"] for w in words]
    labels = [list(rng.integers(0, 5, len(w))) for w in words]
    preprocessor = LongformerTokenClassifierPreprocessor(tokenizer, sequence_length=LENGTH)
    x, y = preprocessor(words, labels)
    x = numpy(x)
    encoding = hf(words, is_split_into_words=True, padding=True, truncation=True, max_length=LENGTH)
    assert_matches_hf(x, encoding)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(y), hf_token_labels(encoding, labels))
    assert not x["global_mask"].any()
    word_ids = np.array([[-1 if w is None else w for w in encoding.word_ids(b)] for b in range(len(words))])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(preprocessor.word_ids(words)), word_ids)
    # tf.data with ragged words and labels gives the same.
    ragged = (tf.ragged.constant(words), tf.ragged.constant(labels))
    x_data, y_data = first_batch(preprocessor, *ragged)
    np.testing.assert_array_equal(x_data["token_ids"].numpy(), x["token_ids"])
    np.testing.assert_array_equal(y_data.numpy(), keras.ops.convert_to_numpy(y))
    with pytest.raises(ValueError, match="one label per word"):
        preprocessor(words, [row[:-1] for row in labels])


def test_masked_lm_masks_dynamically_and_labels_the_originals(tokenizer):
    preprocessor = LongformerMaskedLMPreprocessor(tokenizer, sequence_length=LENGTH, mask_selection_rate=0.3)
    plain = numpy(LongformerTextClassifierPreprocessor(tokenizer, sequence_length=LENGTH)(TEXTS))
    x, y, weights = preprocessor(TEXTS)
    x, y, weights = numpy(x), keras.ops.convert_to_numpy(y), keras.ops.convert_to_numpy(weights)
    np.testing.assert_array_equal(x["padding_mask"], plain["padding_mask"])
    assert not x["global_mask"].any()
    positions = x["mask_positions"]
    selected = weights > 0
    assert positions.shape == y.shape == weights.shape and selected.any()
    rows = np.nonzero(selected)[0]
    # Labels are the original tokens, never a special token or padding.
    np.testing.assert_array_equal(y[selected], plain["token_ids"][rows, positions[selected]])
    assert not np.isin(y[selected], [0, 1, 2, 3, 4]).any()
    assert x["padding_mask"][rows, positions[selected]].all()
    # Most selected tokens became <mask>; nothing else changed.
    assert (x["token_ids"][rows, positions[selected]] == tokenizer.mask_token_id).mean() > 0.5
    untouched = np.ones_like(selected, bool)
    untouched = np.ones(x["token_ids"].shape, bool)
    untouched[rows, positions[selected]] = False
    np.testing.assert_array_equal(x["token_ids"][untouched], plain["token_ids"][untouched])
    # A second call masks differently (dynamic masking).
    again = numpy(preprocessor(TEXTS)[0])
    assert not np.array_equal(again["mask_positions"], positions)


def test_causal_lm_shifts_by_one(tokenizer, hf):
    preprocessor = LongformerCausalLMPreprocessor(tokenizer, sequence_length=LENGTH)
    x, y, weights = preprocessor(TEXTS)
    x, y, weights = numpy(x), keras.ops.convert_to_numpy(y), keras.ops.convert_to_numpy(weights)
    full = hf(TEXTS, padding=True, truncation=True, max_length=LENGTH + 1)
    ids = np.array(full["input_ids"])
    width = x["token_ids"].shape[1]
    np.testing.assert_array_equal(x["token_ids"], ids[:, :width])
    np.testing.assert_array_equal(y, ids[:, 1 : width + 1])
    np.testing.assert_array_equal(weights, np.array(full["attention_mask"])[:, 1 : width + 1] == 1)
    assert not x["global_mask"].any()


@pytest.mark.parametrize(
    "make",
    [
        lambda t: LongformerTextClassifierPreprocessor(t, sequence_length=8, truncate="error"),
        lambda t: LongformerMaskedLMPreprocessor(t, sequence_length=8, truncate="error"),
        lambda t: LongformerCausalLMPreprocessor(t, sequence_length=8, truncate="error"),
    ],
)
def test_truncate_error_refuses_long_text(tokenizer, make):
    preprocessor = make(tokenizer)
    preprocessor(["the dog"])  # fits
    with pytest.raises(ValueError, match=r"sequence_length=8.*Received: \d+ tokens"):
        preprocessor(["the quick brown fox jumps over the lazy dog"])
    with pytest.raises(tf.errors.InvalidArgumentError, match="sequence_length=8"):
        first_batch(preprocessor, ["the quick brown fox jumps over the lazy dog"])


def test_truncate_error_for_pairs_and_words(tokenizer):
    qa = LongformerQuestionAnswererPreprocessor(tokenizer, sequence_length=8, truncate="error")
    with pytest.raises(ValueError, match="sequence_length=8"):
        qa((["who?"], ["the quick brown fox jumps over the lazy dog"]))
    tagger = LongformerTokenClassifierPreprocessor(tokenizer, sequence_length=8, truncate="error")
    with pytest.raises(ValueError, match="sequence_length=8"):
        tagger([["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog"]])


@pytest.mark.parametrize(
    "cls, kwargs, message",
    [
        (LongformerTextClassifierPreprocessor, {"sequence_length": 0}, "Received: sequence_length=0"),
        (LongformerTextClassifierPreprocessor, {"truncate": "end"}, "Received: truncate='end'"),
        (LongformerQuestionAnswererPreprocessor, {"pad_to_sequence_length": 1}, "Received: pad_to_sequence_length=1"),
        (LongformerTokenClassifierPreprocessor, {"truncate": "waterfall"}, "Received: truncate='waterfall'"),
        (LongformerMaskedLMPreprocessor, {"mask_selection_rate": 1.5}, "Received: mask_selection_rate=1.5"),
        (LongformerCausalLMPreprocessor, {"sequence_length": 2.5}, "Received: sequence_length=2.5"),
    ],
)
def test_bad_arguments_name_the_argument(tokenizer, cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(tokenizer, **kwargs)


def test_question_answering_needs_a_pair(tokenizer):
    preprocessor = LongformerQuestionAnswererPreprocessor(tokenizer)
    with pytest.raises(ValueError, match=r"\(question, context\) pair"):
        preprocessor(["only one text"])
    with pytest.raises(ValueError, match=r"same number of texts. Received: batch shapes \[\(2,\), \(1,\)\]"):
        preprocessor((["a", "b"], ["c"]))


@pytest.mark.parametrize(
    "cls, x",
    [
        (LongformerTextClassifierPreprocessor, TEXTS[:4]),
        (LongformerQuestionAnswererPreprocessor, (TEXTS[:2], TEXTS[2:4])),
        (LongformerTokenClassifierPreprocessor, [["a", "b"], ["the", "quick", "fox"]]),
        (LongformerCausalLMPreprocessor, TEXTS[:4]),
    ],
)
def test_config_round_trip_gives_the_same_features(tokenizer, cls, x):
    preprocessor = cls(tokenizer, sequence_length=20, pad_to_sequence_length=True)
    clone = cls.from_config(preprocessor.get_config())
    clone.tokenizer.set_vocabulary_and_merges(tokenizer.vocabulary, tokenizer.merges)
    assert clone.get_config() == preprocessor.get_config()
    ours, theirs = preprocessor(x), clone(x)
    ours, theirs = (o[0] if isinstance(o, tuple) else o for o in (ours, theirs))
    for key in ours:
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours[key]), keras.ops.convert_to_numpy(theirs[key]))
