"""keras-hub's own model harness judges the backbone, every task and preprocessor.

`keras_hub/src/tests/test_case.py` ships in keras-hub's wheel (it imports
`grain`, a test extra here): the checks every keras-hub model passes —
config and serialization round trips, eager and compiled calls at several
lengths, mixed precision, quantization (int8 and float8), `.keras` saving,
task `fit`/`predict` with the preprocessor inside and split out, and
presets. The backbone's checks are marked `backends`: they run under JAX
and torch too (the task checks, minutes of compiling per backend, run on
TensorFlow; every task trains on all three in tests/test_models.py).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras_hub.src.tests import test_case

from bpe_fixtures import train_bpe
from keras_longformer import models

VOCAB_TEXTS = ["the quick brown fox", "jumps over the lazy dog", "a long document"]
LABELS = np.array([0, 2, 1])


def backbone_kwargs(vocabulary_size=40):
    return dict(
        vocabulary_size=vocabulary_size, num_layers=2, num_heads=2, hidden_dim=8,
        intermediate_dim=16, window=[2, 3], dilation=[1, [1, 2]], max_sequence_length=24,
        dropout=0.0, attention_dropout=0.0,
    )


def backbone_inputs(length=12, batch_size=2):
    rng = np.random.default_rng(0)
    ids = rng.integers(3, 40, (batch_size, length)).astype("int32")
    padding = np.ones((batch_size, length), "int32")
    padding[1, -3:] = 0
    ids[padding == 0] = 1
    glob = np.zeros((batch_size, length), "int32")
    glob[:, 0] = 1
    return {"token_ids": ids, "padding_mask": padding, "global_mask": glob}


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    directory = train_bpe(str(tmp_path_factory.mktemp("bpe")), vocab_size=300)
    return models.LongformerTokenizer.from_huggingface(directory)


@pytest.mark.backends
class BackboneHarnessTest(test_case.TestCase):
    test_session = None  # tf.test.TestCase's session helper, not a test

    def test_backbone_basics(self):
        self.run_backbone_test(
            cls=models.LongformerBackbone,
            init_kwargs=backbone_kwargs(),
            input_data=backbone_inputs(),
            expected_output_shape={"sequence_output": (2, 12, 8), "pooled_output": (2, 8)},
        )

    def test_causal_backbone_basics(self):
        self.run_backbone_test(
            cls=models.LongformerBackbone,
            init_kwargs={**backbone_kwargs(), "causal": True},
            input_data={**backbone_inputs(), "global_mask": np.zeros((2, 12), "int32")},
            expected_output_shape={"sequence_output": (2, 12, 8), "pooled_output": (2, 8)},
        )

    def test_backbone_preset(self):
        backbone = models.LongformerBackbone(**backbone_kwargs())
        preset = self.get_temp_dir()
        backbone.save_to_preset(preset)
        inputs = backbone_inputs()
        self.run_preset_test(
            cls=models.LongformerBackbone,
            preset=preset,
            input_data=inputs,
            expected_output=backbone(inputs),
        )

    def test_backbone_saved_model(self):
        self.run_model_saving_test(
            cls=models.LongformerBackbone,
            init_kwargs=backbone_kwargs(),
            input_data=backbone_inputs(),
        )


@pytest.fixture(scope="class")
def harness_tokenizer(request, tokenizer):
    request.cls.tokenizer = tokenizer


@pytest.mark.usefixtures("harness_tokenizer")
class TaskHarnessTest(test_case.TestCase):
    test_session = None  # tf.test.TestCase's session helper, not a test

    def backbone(self, causal=False):
        kwargs = backbone_kwargs(self.tokenizer.vocabulary_size())
        return models.LongformerBackbone(**kwargs, causal=causal)

    def test_text_classifier(self):
        preprocessor = models.LongformerTextClassifierPreprocessor(self.tokenizer, sequence_length=16)
        self.run_task_test(
            cls=models.LongformerTextClassifier,
            init_kwargs={"backbone": self.backbone(), "num_classes": 3, "preprocessor": preprocessor},
            train_data=(VOCAB_TEXTS, LABELS),
            expected_output_shape=(3, 3),
        )

    def test_text_classifier_preset(self):
        preprocessor = models.LongformerTextClassifierPreprocessor(
            self.tokenizer, sequence_length=16, pad_to_sequence_length=True
        )
        classifier = models.LongformerTextClassifier(self.backbone(), num_classes=3, preprocessor=preprocessor)
        preset = self.get_temp_dir()
        classifier.save_to_preset(preset)
        self.run_preset_test(
            cls=models.LongformerTextClassifier,
            preset=preset,
            input_data=preprocessor(VOCAB_TEXTS),
            expected_output=classifier(preprocessor(VOCAB_TEXTS)),
        )

    def test_token_classifier(self):
        preprocessor = models.LongformerTokenClassifierPreprocessor(
            self.tokenizer, sequence_length=16, pad_to_sequence_length=True
        )
        words = tf.ragged.constant([text.split() for text in VOCAB_TEXTS])
        labels = tf.ragged.constant([[i % 4 for i, _ in enumerate(text.split())] for text in VOCAB_TEXTS])
        self.run_task_test(
            cls=models.LongformerTokenClassifier,
            init_kwargs={"backbone": self.backbone(), "num_classes": 4, "preprocessor": preprocessor},
            train_data=(words, labels),
            expected_output_shape=(3, 16, 4),
        )

    def test_question_answerer(self):
        preprocessor = models.LongformerQuestionAnswererPreprocessor(
            self.tokenizer, sequence_length=16, pad_to_sequence_length=True
        )
        questions = ["who?", "what is it?", "the fox"]
        self.run_task_test(
            cls=models.LongformerQuestionAnswerer,
            init_kwargs={"backbone": self.backbone(), "preprocessor": preprocessor},
            train_data=((questions, VOCAB_TEXTS), (np.array([5, 6, 7]), np.array([6, 8, 7]))),
            expected_output_shape={"start_logits": (3, 16), "end_logits": (3, 16)},
        )

    def test_masked_lm(self):
        """The harness's task checks but one: ours keeps the backbone's three
        graph inputs (the exported file serves them) and takes
        `mask_positions` as a call route, so the structure check against a
        fourth graph input cannot hold; serialization, saving and `fit` with
        the preprocessor inside and split out run as the harness runs them."""
        preprocessor = models.LongformerMaskedLMPreprocessor(
            self.tokenizer, sequence_length=16, mask_selection_length=4, mask_selection_rate=0.3
        )
        task = models.LongformerMaskedLM(self.backbone(), preprocessor=preprocessor)
        self.run_serialization_test(task)
        dataset = tf.data.Dataset.from_tensor_slices((VOCAB_TEXTS,)).batch(2)
        task.fit(VOCAB_TEXTS)
        task.fit(dataset)
        task.preprocessor = None
        task.fit(dataset.map(preprocessor))
        task.preprocessor = preprocessor
        features, _, _ = keras.utils.unpack_x_y_sample_weight(preprocessor(VOCAB_TEXTS))
        self.assertEqual(tuple(task.predict(features).shape), (3, 4, self.tokenizer.vocabulary_size()))
        self.run_model_saving_test(
            cls=models.LongformerMaskedLM,
            init_kwargs={"backbone": self.backbone(), "preprocessor": preprocessor},
            input_data=features,
        )

    def test_causal_lm(self):
        # Padded to `sequence_length`: by default a batch runs at its own
        # longest row, and `predict` on raw text fills the positions past it
        # with PREDICTION_PAD_VALUE, which the harness's split-preprocessing
        # predictions (batched differently) would not repeat.
        preprocessor = models.LongformerCausalLMPreprocessor(
            self.tokenizer, sequence_length=16, pad_to_sequence_length=True
        )
        self.run_task_test(
            cls=models.LongformerCausalLM,
            init_kwargs={"backbone": self.backbone(causal=True), "preprocessor": preprocessor},
            train_data=(VOCAB_TEXTS,),
            expected_output_shape=(3, 16, self.tokenizer.vocabulary_size()),
        )

    def test_preprocessors(self):
        for cls in (
            models.LongformerTextClassifierPreprocessor,
            models.LongformerCausalLMPreprocessor,
        ):
            # keras-hub's preprocessors always pad to `sequence_length`, and
            # the harness compares a batch with the same rows preprocessed
            # one at a time; ours by default cut a batch at its longest row.
            self.init_kwargs = {
                "tokenizer": self.tokenizer, "sequence_length": 8, "pad_to_sequence_length": True,
            }
            self.run_preprocessor_test(cls=cls, init_kwargs=self.init_kwargs, input_data=VOCAB_TEXTS)
