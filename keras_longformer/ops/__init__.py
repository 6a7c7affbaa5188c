"""Pure attention functions on tensors (no weights)."""

from keras_longformer.ops.attention import longformer_attention

__all__ = ["longformer_attention"]
