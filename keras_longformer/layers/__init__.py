"""Keras layers built on `keras_longformer.ops`."""

from keras_longformer.layers.longformer_embeddings import LongformerEmbeddings
from keras_longformer.layers.longformer_encoder_layer import LongformerEncoderLayer
from keras_longformer.layers.longformer_self_attention import LongformerSelfAttention

__all__ = ["LongformerEmbeddings", "LongformerEncoderLayer", "LongformerSelfAttention"]
