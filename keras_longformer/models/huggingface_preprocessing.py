"""The preprocessor a model converted from a Hugging Face checkpoint comes with.

`keras_longformer.convert.from_huggingface` calls
`attach_huggingface_preprocessor` on the model it built: when the checkpoint
directory holds tokenizer files, the task gets the matching preprocessor,
with the checkpoint's own longest sequence (`max_position_embeddings - 2`:
4,096 for `longformer-base-4096`) as its `sequence_length`.
"""

import os
import warnings

from keras_longformer.models.longformer_tokenizer import HF_MERGES_FILE
from keras_longformer.models.longformer_tokenizer import HF_TOKENIZER_FILE
from keras_longformer.models.longformer_tokenizer import HF_VOCAB_FILE
from keras_longformer.models.longformer_tokenizer import LongformerTokenizer


def has_tokenizer_files(directory):
    """Whether `directory` holds `tokenizer.json`, or `vocab.json` and `merges.txt`."""
    exists = lambda name: os.path.isfile(os.path.join(directory, name))  # noqa: E731
    return exists(HF_TOKENIZER_FILE) or (exists(HF_VOCAB_FILE) and exists(HF_MERGES_FILE))


def attach_huggingface_preprocessor(model, directory):
    """Gives a task model the preprocessor of a checkpoint directory's tokenizer.

    Args:
        model: a task model (a backbone is returned unchanged: it has no
            preprocessor).
        directory: the Hugging Face checkpoint directory.

    Returns:
        `model`, with `model.preprocessor` set when `directory` has tokenizer
        files. A tokenizer that is not RoBERTa's byte-level BPE is left out
        with a warning saying why (the weights still load).
    """
    preprocessor_cls = getattr(model, "preprocessor_cls", None)
    if preprocessor_cls is None or not has_tokenizer_files(directory):
        return model
    try:
        tokenizer = LongformerTokenizer.from_huggingface(directory)
    except ValueError as error:
        warnings.warn(
            f"The tokenizer in {directory} was not attached: {error}", stacklevel=3
        )
        return model
    backbone = model.backbone
    if hasattr(backbone, "max_encoder_sequence_length"):  # an LED
        model.preprocessor = preprocessor_cls(
            tokenizer,
            encoder_sequence_length=backbone.max_encoder_sequence_length,
            decoder_sequence_length=backbone.max_decoder_sequence_length,
        )
    else:
        model.preprocessor = preprocessor_cls(tokenizer, sequence_length=backbone.max_sequence_length)
    return model
