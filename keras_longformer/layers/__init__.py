"""Keras layers built on `keras_longformer.ops`."""

from keras_longformer.layers.longformer_self_attention import LongformerSelfAttention

__all__ = ["LongformerSelfAttention"]
