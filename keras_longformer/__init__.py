"""Longformer attention, layers and models for Keras 3."""

__version__ = "0.1.0.dev0"

from keras_longformer import convert  # noqa: E402
from keras_longformer import layers  # noqa: E402
from keras_longformer import models  # noqa: E402
from keras_longformer import ops  # noqa: E402
from keras_longformer.convert import bart_to_led  # noqa: E402
from keras_longformer.convert import convert_to_long  # noqa: E402
from keras_longformer.convert import led_from_huggingface  # noqa: E402
from keras_longformer.convert import copy_global_projections  # noqa: E402
from keras_longformer.convert import from_huggingface  # noqa: E402
from keras_longformer.layers import LongformerEmbeddings  # noqa: E402
from keras_longformer.layers import LongformerEncoderLayer  # noqa: E402
from keras_longformer.layers import LongformerSelfAttention  # noqa: E402
from keras_longformer.models import LEDBackbone  # noqa: E402
from keras_longformer.models import LEDSeq2SeqLM  # noqa: E402
from keras_longformer.models import LongformerBackbone  # noqa: E402
from keras_longformer.models import LongformerCausalLM  # noqa: E402
from keras_longformer.models import LongformerCausalLMPreprocessor  # noqa: E402
from keras_longformer.models import LongformerClassifier  # noqa: E402
from keras_longformer.models import LongformerMaskedLM  # noqa: E402
from keras_longformer.models import LongformerMaskedLMPreprocessor  # noqa: E402
from keras_longformer.models import LongformerQuestionAnswerer  # noqa: E402
from keras_longformer.models import LongformerQuestionAnswererPreprocessor  # noqa: E402
from keras_longformer.models import LongformerQuestionAnswering  # noqa: E402
from keras_longformer.models import LongformerTextClassifier  # noqa: E402
from keras_longformer.models import LongformerTextClassifierPreprocessor  # noqa: E402
from keras_longformer.models import LongformerTokenClassifier  # noqa: E402
from keras_longformer.models import LongformerTokenClassifierPreprocessor  # noqa: E402
from keras_longformer.models import LongformerTokenizer  # noqa: E402
from keras_longformer.models import extend_position_embeddings  # noqa: E402
from keras_longformer.ops import longformer_attention  # noqa: E402
