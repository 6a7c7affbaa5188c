"""Checkpoint converters."""

from keras_longformer.convert.huggingface import TASKS
from keras_longformer.convert.huggingface import backbone_config_from_huggingface
from keras_longformer.convert.huggingface import from_huggingface
from keras_longformer.convert.to_long import convert_to_long
from keras_longformer.convert.to_long import copy_global_projections

__all__ = [
    "TASKS",
    "backbone_config_from_huggingface",
    "convert_to_long",
    "copy_global_projections",
    "from_huggingface",
]
