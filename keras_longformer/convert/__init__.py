"""Checkpoint converters."""

from keras_longformer.convert.huggingface import TASKS
from keras_longformer.convert.huggingface import backbone_config_from_huggingface
from keras_longformer.convert.huggingface import from_huggingface

__all__ = ["TASKS", "backbone_config_from_huggingface", "from_huggingface"]
