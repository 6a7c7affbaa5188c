"""Longformer backbone, tokenizer, preprocessors and task models (keras-hub's family shape).

`LongformerClassifier` and `LongformerQuestionAnswering` are the former
names of `LongformerTextClassifier` and `LongformerQuestionAnswerer`.
"""

from keras_longformer.models.led_backbone import LEDBackbone
from keras_longformer.models.led_seq2seq_lm import LEDSeq2SeqLM
from keras_longformer.models.led_seq2seq_lm_preprocessor import LEDSeq2SeqLMPreprocessor
from keras_longformer.models.longformer_backbone import LongformerBackbone
from keras_longformer.models.longformer_causal_lm import LongformerCausalLM
from keras_longformer.models.longformer_causal_lm import bits_per_token
from keras_longformer.models.longformer_causal_lm_preprocessor import LongformerCausalLMPreprocessor
from keras_longformer.models.longformer_masked_lm import LongformerMaskedLM
from keras_longformer.models.longformer_masked_lm_preprocessor import LongformerMaskedLMPreprocessor
from keras_longformer.models.longformer_question_answerer_preprocessor import (
    LongformerQuestionAnswererPreprocessor,
)
from keras_longformer.models.longformer_question_answerer import LongformerQuestionAnswerer
from keras_longformer.models.longformer_question_answerer import LongformerQuestionAnswering
from keras_longformer.models.longformer_text_classifier import LongformerClassifier
from keras_longformer.models.longformer_text_classifier import LongformerTextClassifier
from keras_longformer.models.longformer_text_classifier_preprocessor import (
    LongformerTextClassifierPreprocessor,
)
from keras_longformer.models.longformer_token_classifier import LongformerTokenClassifier
from keras_longformer.models.longformer_token_classifier_preprocessor import (
    LongformerTokenClassifierPreprocessor,
)
from keras_longformer.models.longformer_tokenizer import LongformerTokenizer
from keras_longformer.models.position_embeddings import extend_position_embeddings
from keras_longformer.models.strided_evaluation import strided_bits_per_token

__all__ = [
    "LEDBackbone",
    "LEDSeq2SeqLM",
    "LEDSeq2SeqLMPreprocessor",
    "LongformerBackbone",
    "LongformerCausalLM",
    "LongformerCausalLMPreprocessor",
    "LongformerClassifier",
    "LongformerMaskedLM",
    "LongformerMaskedLMPreprocessor",
    "LongformerQuestionAnswerer",
    "LongformerQuestionAnswererPreprocessor",
    "LongformerQuestionAnswering",
    "LongformerTextClassifier",
    "LongformerTextClassifierPreprocessor",
    "LongformerTokenClassifier",
    "LongformerTokenClassifierPreprocessor",
    "LongformerTokenizer",
    "bits_per_token",
    "extend_position_embeddings",
    "strided_bits_per_token",
]
