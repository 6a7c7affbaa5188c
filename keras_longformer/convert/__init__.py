"""Checkpoint converters."""

from keras_longformer.convert.huggingface import TASKS
from keras_longformer.convert.huggingface import backbone_config_from_huggingface
from keras_longformer.convert.huggingface import from_huggingface
from keras_longformer.convert.led import led_from_huggingface
from keras_longformer.convert.led_from_bart import bart_to_led
from keras_longformer.convert.to_long import convert_to_long
from keras_longformer.convert.to_long import copy_global_projections

__all__ = [
    "bart_to_led",
    "led_from_huggingface",
    "TASKS",
    "backbone_config_from_huggingface",
    "convert_to_long",
    "copy_global_projections",
    "from_huggingface",
]
