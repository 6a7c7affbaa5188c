"""LongformerTokenizer against Hugging Face's LongformerTokenizerFast, id for id."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from bpe_fixtures import checkpoint_dirs
from bpe_fixtures import hf_tokenizer
from bpe_fixtures import varied_texts
from keras_longformer.models.longformer_tokenizer import LongformerTokenizer

TEXTS = varied_texts()


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    return checkpoint_dirs(str(tmp_path_factory.mktemp("bpe")))


def hf_ids(hf, texts):
    return [hf(text, add_special_tokens=False)["input_ids"] for text in texts]


def as_lists(ids):
    return [list(map(int, row)) for row in ids]


def tf_data_ids(tokenizer, texts):
    """Token ids through a `tf.data` pipeline (keras-hub's graph tokenizer)."""
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(7).map(tokenizer)
    return [list(map(int, row)) for batch in dataset for row in batch.to_list()]


@pytest.mark.parametrize("kind", ["vocab_merges", "tokenizer_json", "mask_lstrip"])
def test_eager_ids_equal_hugging_face(dirs, kind):
    tokenizer = LongformerTokenizer.from_huggingface(dirs[kind])
    hf = hf_tokenizer(dirs[kind])
    expected = hf_ids(hf, TEXTS)
    assert as_lists(tokenizer(TEXTS)) == expected
    # One string at a time gives the same ids as a batch.
    for text, ids in zip(TEXTS[:8], expected):
        assert list(map(int, tokenizer(text))) == ids


@pytest.mark.parametrize("kind", ["vocab_merges", "mask_lstrip"])
def test_tf_data_ids_equal_hugging_face(dirs, kind):
    tokenizer = LongformerTokenizer.from_huggingface(dirs[kind])
    hf = hf_tokenizer(dirs[kind])
    assert tf_data_ids(tokenizer, TEXTS) == hf_ids(hf, TEXTS)


def test_mask_lstrip_swallows_the_space_before_mask(dirs):
    plain = LongformerTokenizer.from_huggingface(dirs["tokenizer_json"])
    stripping = LongformerTokenizer.from_huggingface(dirs["mask_lstrip"])
    assert not plain.mask_token_lstrip and stripping.mask_token_lstrip
    text = "a \t<mask> b"
    mask, space = plain.mask_token_id, plain.token_to_id("Ġ")
    assert list(map(int, plain(text)))[1:3] != [mask] and space in list(map(int, plain(text)))
    assert list(map(int, stripping(text)))[:2] == [plain.token_to_id("a"), mask]


def test_special_tokens_are_roberta_s(dirs):
    tokenizer = LongformerTokenizer.from_huggingface(dirs["tokenizer_json"])
    hf = hf_tokenizer(dirs["tokenizer_json"])
    assert tokenizer.start_token_id == hf.bos_token_id == hf.cls_token_id == 0
    assert tokenizer.pad_token_id == hf.pad_token_id == 1
    assert tokenizer.end_token_id == hf.eos_token_id == hf.sep_token_id == 2
    assert tokenizer.unk_token_id == hf.unk_token_id == 3
    assert tokenizer.mask_token_id == hf.mask_token_id == 4
    assert tokenizer.vocabulary_size() == len(hf)


def test_detokenize_equals_hugging_face_decode(dirs):
    tokenizer = LongformerTokenizer.from_huggingface(dirs["vocab_merges"])
    hf = hf_tokenizer(dirs["vocab_merges"])
    ids = hf_ids(hf, TEXTS)
    assert tokenizer.detokenize(ids) == [hf.decode(row) for row in ids]
    # Byte-level BPE loses nothing: decoding gives the text back.
    assert tokenizer.detokenize(tokenizer(TEXTS)) == TEXTS


def test_add_prefix_space_from_tokenizer_config(dirs, tmp_path):
    for name in ("vocab.json", "merges.txt"):
        with open(os.path.join(dirs["vocab_merges"], name), encoding="utf-8") as src:
            (tmp_path / name).write_text(src.read(), encoding="utf-8")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"add_prefix_space": True}))
    tokenizer = LongformerTokenizer.from_huggingface(tmp_path)
    hf = hf_tokenizer(dirs["vocab_merges"], add_prefix_space=True)
    assert tokenizer.add_prefix_space
    assert as_lists(tokenizer(TEXTS[:12])) == hf_ids(hf, TEXTS[:12])


def test_config_round_trip_and_keras_serialization(dirs):
    tokenizer = LongformerTokenizer.from_huggingface(dirs["mask_lstrip"])
    config = tokenizer.get_config()
    assert config["mask_token_lstrip"] is True and config["add_prefix_space"] is False
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(tokenizer))
    assert type(clone) is LongformerTokenizer
    # The vocabulary travels as assets (keras-hub's presets), not in the config.
    clone.set_vocabulary_and_merges(tokenizer.vocabulary, tokenizer.merges)
    assert as_lists(clone(TEXTS)) == as_lists(tokenizer(TEXTS))


def test_directory_without_tokenizer_files_is_an_error(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match=r"tokenizer\.json.*vocab\.json.*merges\.txt"):
        LongformerTokenizer.from_huggingface(tmp_path)
    # vocab.json alone is not enough either.
    (tmp_path / "vocab.json").write_text(json.dumps({"<s>": 0}))
    with pytest.raises(ValueError, match="merges.txt"):
        LongformerTokenizer.from_huggingface(tmp_path)
    with pytest.raises(ValueError, match="not a directory"):
        LongformerTokenizer.from_huggingface(tmp_path / "missing")


def test_tokenizer_json_of_another_kind_is_an_error(dirs, tmp_path):
    with open(os.path.join(dirs["tokenizer_json"], "tokenizer.json"), encoding="utf-8") as file:
        spec = json.load(file)
    wordpiece = dict(spec, model={"type": "WordPiece", "vocab": {}})
    (tmp_path / "tokenizer.json").write_text(json.dumps(wordpiece))
    with pytest.raises(ValueError, match="model type='WordPiece'"):
        LongformerTokenizer.from_huggingface(tmp_path)
    lowercase = dict(spec, normalizer={"type": "Lowercase"})
    (tmp_path / "tokenizer.json").write_text(json.dumps(lowercase))
    with pytest.raises(ValueError, match="Received: normalizer="):
        LongformerTokenizer.from_huggingface(tmp_path)
    whitespace = dict(spec, pre_tokenizer={"type": "Whitespace"})
    (tmp_path / "tokenizer.json").write_text(json.dumps(whitespace))
    with pytest.raises(ValueError, match="Received: pre_tokenizer="):
        LongformerTokenizer.from_huggingface(tmp_path)


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="Received: add_prefix_space='yes'"):
        LongformerTokenizer(add_prefix_space="yes")
    with pytest.raises(ValueError, match="Received: mask_token_lstrip=1"):
        LongformerTokenizer(mask_token_lstrip=1)
    with pytest.raises(ValueError, match="<mask>"):
        LongformerTokenizer(
            vocabulary={"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "a": 4, "b": 5, "ab": 6},
            merges=["a b"],
        )


def test_ids_are_int32_numpy_compatible(dirs):
    tokenizer = LongformerTokenizer.from_huggingface(dirs["vocab_merges"])
    ids = tokenizer("the quick brown fox")
    assert keras.ops.convert_to_numpy(ids).dtype == np.int32
