"""keras-hub's own model harness (`keras_hub/src/tests/test_case.py`) on LEDBackbone:
config and serialization round trips, eager and compiled calls, mixed precision,
quantization, `.keras` saving and presets. (`run_task_test` needs the task's
preprocessor, which LED does not have yet: issue 19.)"""

import numpy as np
import pytest
from keras_hub.src.tests import test_case

from keras_longformer import models


def led_kwargs():
    return dict(vocabulary_size=40, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16,
                window=[2, 3], dilation=[1, [1, 2]], max_encoder_sequence_length=24,
                max_decoder_sequence_length=12, dropout=0.0)


def led_inputs(length=12, decoder_length=5, batch_size=2):
    rng = np.random.default_rng(0)
    ids = rng.integers(3, 40, (batch_size, length)).astype("int32")
    padding = np.ones((batch_size, length), "int32")
    padding[1, -3:] = 0
    ids[padding == 0] = 1
    glob = np.zeros((batch_size, length), "int32")
    glob[:, 0] = 1
    decoder = rng.integers(3, 40, (batch_size, decoder_length)).astype("int32")
    return {"encoder_token_ids": ids, "encoder_padding_mask": padding, "encoder_global_mask": glob,
            "decoder_token_ids": decoder, "decoder_padding_mask": np.ones_like(decoder)}


@pytest.mark.backends
class LEDHarnessTest(test_case.TestCase):
    test_session = None  # tf.test.TestCase's session helper, not a test

    def test_backbone_basics(self):
        self.run_backbone_test(
            cls=models.LEDBackbone,
            init_kwargs=led_kwargs(),
            input_data=led_inputs(),
            expected_output_shape={"encoder_sequence_output": (2, 12, 8),
                                   "decoder_sequence_output": (2, 5, 8)},
        )

    def test_backbone_preset(self):
        backbone = models.LEDBackbone(**led_kwargs())
        preset = self.get_temp_dir()
        backbone.save_to_preset(preset)
        inputs = led_inputs()
        self.run_preset_test(cls=models.LEDBackbone, preset=preset, input_data=inputs,
                             expected_output=backbone(inputs))


DOCUMENTS = ["the quick brown fox jumps over the lazy dog", "a long document", "over the fox"]
SUMMARIES = ["quick fox", "a document", "the fox"]


@pytest.fixture(scope="module")
def led_tokenizer(tmp_path_factory):
    from bpe_fixtures import train_bpe

    directory = train_bpe(str(tmp_path_factory.mktemp("bpe")), vocab_size=300)
    return models.LongformerTokenizer.from_huggingface(directory)


@pytest.fixture(scope="class")
def harness_led_tokenizer(request, led_tokenizer):
    request.cls.tokenizer = led_tokenizer


@pytest.mark.usefixtures("harness_led_tokenizer")
class LEDTaskHarnessTest(test_case.TestCase):
    test_session = None  # tf.test.TestCase's session helper, not a test

    def preprocessor(self):
        return models.LEDSeq2SeqLMPreprocessor(self.tokenizer, encoder_sequence_length=12,
                                               decoder_sequence_length=6)

    def test_preprocessor(self):
        self.init_kwargs = {"tokenizer": self.tokenizer, "encoder_sequence_length": 12,
                            "decoder_sequence_length": 6}
        self.run_preprocessor_test(
            cls=models.LEDSeq2SeqLMPreprocessor,
            init_kwargs=self.init_kwargs,
            input_data={"encoder_text": DOCUMENTS, "decoder_text": SUMMARIES},
            token_id_key="decoder_token_ids",  # `sequence_length` is the decoder's, as BART's
        )
        x, y, weights = self.preprocessor()({"encoder_text": DOCUMENTS, "decoder_text": SUMMARIES})
        # <s> document </s>, <s> the one global token; </s> <s> summary, shifted.
        ids, glob = np.asarray(x["encoder_token_ids"]), np.asarray(x["encoder_global_mask"])
        assert (ids[:, 0] == self.tokenizer.start_token_id).all()
        assert glob[:, 0].all() and not glob[:, 1:].any()
        decoder = np.asarray(x["decoder_token_ids"])
        assert (decoder[:, 0] == self.tokenizer.end_token_id).all()
        assert (decoder[:, 1] == self.tokenizer.start_token_id).all()
        np.testing.assert_array_equal(np.asarray(y)[:, :-1], decoder[:, 1:])

    def test_seq2seq_lm_task(self):
        kwargs = {**led_kwargs(), "vocabulary_size": self.tokenizer.vocabulary_size()}
        self.run_task_test(
            cls=models.LEDSeq2SeqLM,
            init_kwargs={"backbone": models.LEDBackbone(**kwargs), "preprocessor": self.preprocessor()},
            train_data=({"encoder_text": DOCUMENTS, "decoder_text": SUMMARIES},),
            expected_output_shape=(3, 6, self.tokenizer.vocabulary_size()),
        )

    def test_generate_from_text(self):
        kwargs = {**led_kwargs(), "vocabulary_size": self.tokenizer.vocabulary_size()}
        lm = models.LEDSeq2SeqLM(models.LEDBackbone(**kwargs), preprocessor=self.preprocessor())
        lm.compile(sampler="greedy")
        outputs = lm.generate(DOCUMENTS, max_length=6)
        assert len(outputs) == 3 and all(isinstance(text, str) for text in outputs)
