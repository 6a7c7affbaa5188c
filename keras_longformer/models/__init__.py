"""Longformer backbone and task models."""

from keras_longformer.models.longformer_backbone import LongformerBackbone

__all__ = ["LongformerBackbone"]
