"""Longformer attention, layers and models for Keras 3."""

__version__ = "0.1.0.dev0"

from keras_longformer import layers  # noqa: E402
from keras_longformer import ops  # noqa: E402
from keras_longformer.layers import LongformerSelfAttention  # noqa: E402
from keras_longformer.ops import longformer_attention  # noqa: E402
