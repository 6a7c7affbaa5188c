"""Checkpoint converters."""

from keras_longformer.convert.huggingface import backbone_config_from_huggingface
from keras_longformer.convert.huggingface import from_huggingface

__all__ = ["backbone_config_from_huggingface", "from_huggingface"]
