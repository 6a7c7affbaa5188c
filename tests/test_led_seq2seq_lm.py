"""LEDSeq2SeqLM against Hugging Face's LEDForConditionalGeneration: teacher-forced
logits within 1e-4, greedy generation token for token equal to its `generate`
(the encoder once, a decoder cache), and `fit` lowering the loss, shuffling
in-memory samples every epoch."""

import warnings

import keras
import numpy as np
import pytest
import torch
from transformers import LEDForConditionalGeneration

from keras_longformer.convert.led import led_from_huggingface
from keras_longformer.models import LEDBackbone
from keras_longformer.models import LEDSeq2SeqLM
from test_led_huggingface import features
from test_led_huggingface import hf_led

pytestmark = pytest.mark.backends
TOLERANCE = 1e-4
START, END, PAD = 2, 2, 1  # LED's decoder start and end are both </s>


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    model, directory = hf_led(tmp_path_factory.mktemp("led"), (4, 8), cls=LEDForConditionalGeneration, seed=5,
                              max_encoder_position_embeddings=1024)
    with torch.no_grad():
        model.final_logits_bias.normal_(0, 0.5)  # a bias that matters
    model.save_pretrained(directory)
    return model, led_from_huggingface(directory, task="auto")


def test_auto_builds_the_seq2seq_lm_with_its_bias(pair):
    model, lm = pair
    assert isinstance(lm, LEDSeq2SeqLM)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(lm.decoder.bias),
                                  model.final_logits_bias.numpy()[0])


@pytest.mark.parametrize("length, global_positions", [(1, ()), (9, (0,)), (45, (0, 4, 7)), (700, (0, 5, 300))])
def test_teacher_forced_logits_equal_hugging_face(pair, length, global_positions):
    model, lm = pair
    ids, padding, global_mask, decoder_ids = features(length, 7, global_positions, padded_row=True)
    with torch.no_grad():
        expected = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(padding),
                         global_attention_mask=torch.from_numpy(global_mask),
                         decoder_input_ids=torch.from_numpy(decoder_ids)).logits.numpy()
    logits = lm({
        "encoder_token_ids": ids.astype("int32"), "encoder_padding_mask": padding.astype("int32"),
        "encoder_global_mask": global_mask.astype("int32"), "decoder_token_ids": decoder_ids.astype("int32"),
        "decoder_padding_mask": np.ones_like(decoder_ids, "int32"),
    })
    assert np.max(np.abs(keras.ops.convert_to_numpy(logits) - expected)) <= TOLERANCE


@pytest.mark.parametrize("length, global_positions", [(6, ()), (40, (0,)), (70, (0, 3)), (700, (0, 450))])
def test_greedy_generation_equals_hugging_face_generate(pair, length, global_positions):
    model, lm = pair
    ids, padding, global_mask, _ = features(length, 1, global_positions, padded_row=True, seed=length)
    max_length = 12
    with torch.no_grad():
        expected = model.generate(
            input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(padding),
            global_attention_mask=torch.from_numpy(global_mask), max_length=max_length,
            do_sample=False, num_beams=1, decoder_start_token_id=START, eos_token_id=END,
            pad_token_id=PAD, forced_bos_token_id=None, forced_eos_token_id=None, min_length=0,
            no_repeat_ngram_size=0, repetition_penalty=1.0, length_penalty=1.0,
        ).numpy()
    prompt = np.full((2, max_length), PAD, "int32")
    prompt[:, 0] = START
    lm.compile(sampler="greedy")
    generated = lm.generate({
        "encoder_token_ids": ids.astype("int32"), "encoder_padding_mask": padding.astype("int32"),
        "encoder_global_mask": global_mask.astype("int32"), "decoder_token_ids": prompt,
        "decoder_padding_mask": np.arange(max_length)[None].repeat(2, 0) < 1,
    }, stop_token_ids=[END])
    tokens = np.asarray(generated["decoder_token_ids"])
    mask = np.asarray(generated["decoder_padding_mask"]).astype(bool)
    for row in range(2):
        ours = tokens[row][mask[row]]
        theirs = expected[row][: len(ours)]
        # Hugging Face stops at </s> (its row then holds padding) or max_length.
        hf_length = next((i + 1 for i, t in enumerate(expected[row][1:], 1) if t == END), expected.shape[1])
        assert len(ours) == hf_length, (ours, expected[row])
        np.testing.assert_array_equal(ours, theirs)


def small_lm():
    keras.utils.set_random_seed(0)
    return LEDSeq2SeqLM(LEDBackbone(vocabulary_size=60, num_layers=2, num_heads=2, hidden_dim=16,
                                    intermediate_dim=32, window=4, max_encoder_sequence_length=64,
                                    max_decoder_sequence_length=16, dropout=0.0))


def copy_the_start(count=8):
    """Teacher-forced `(x, y)`: the summary is the document's first 5 tokens."""
    rng = np.random.default_rng(0)
    ids = rng.integers(3, 60, (count, 30)).astype("int32")
    decoder = np.concatenate([np.full((count, 1), START, "int32"), ids[:, :5]], axis=1)
    x = {"encoder_token_ids": ids, "encoder_padding_mask": np.ones_like(ids),
         "encoder_global_mask": (np.arange(30) == 0)[None].repeat(count, 0).astype("int32"),
         "decoder_token_ids": decoder[:, :-1], "decoder_padding_mask": np.ones((count, 5), "int32")}
    return x, decoder[:, 1:]


def test_fit_lowers_the_teacher_forced_loss():
    lm = small_lm()
    x, y = copy_the_start()
    lm.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = lm.evaluate(x, y, verbose=0, return_dict=True)["loss"]
    lm.fit(x, y, epochs=40, batch_size=8, verbose=0)
    after = lm.evaluate(x, y, verbose=0, return_dict=True)["loss"]
    assert after < 0.5 * before, (before, after)


def test_fit_shuffles_in_memory_samples_every_epoch():
    """keras-hub alone batches them in order and warns that `shuffle=True` is
    ignored; shuffled and unshuffled SGD must then end at different weights."""
    x, y = copy_the_start()

    def weights_after_fit(shuffle):
        lm = small_lm()
        lm.compile(optimizer=keras.optimizers.SGD(0.1))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            lm.fit(x, y, epochs=2, batch_size=2, shuffle=shuffle, verbose=0)
        assert not [w for w in caught if "will be ignored" in str(w.message)]
        return np.concatenate([np.ravel(keras.ops.convert_to_numpy(v)) for v in lm.trainable_weights])

    assert np.abs(weights_after_fit(True) - weights_after_fit(False)).max() > 1e-4


def test_a_saved_lm_loads_compiled_as_it_was_saved(tmp_path):
    """Optimizer (state included), sampler: `load_model` compiles the saved
    config again, warning about nothing, and training goes on."""
    lm = small_lm()
    x, y = copy_the_start()
    lm.compile(optimizer=keras.optimizers.SGD(0.25, momentum=0.5), sampler="greedy")
    lm.fit(x, y, epochs=1, batch_size=4, verbose=0)
    lm.save(tmp_path / "lm.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restored = keras.saving.load_model(tmp_path / "lm.keras")
    assert isinstance(restored.optimizer, keras.optimizers.SGD) and restored.optimizer.momentum == 0.5
    assert float(keras.ops.convert_to_numpy(restored.optimizer.learning_rate)) == 0.25
    assert int(keras.ops.convert_to_numpy(restored.optimizer.iterations)) == 2
    assert type(restored.sampler).__name__ == "GreedySampler"
    restored.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert int(keras.ops.convert_to_numpy(restored.optimizer.iterations)) == 4
