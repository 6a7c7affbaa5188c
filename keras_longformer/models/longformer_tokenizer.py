import json
import os

import keras
from keras_hub.tokenizers import BytePairTokenizer

from keras_longformer.arguments import check_bool
from keras_longformer.models.longformer_backbone import LongformerBackbone

# What a Hugging Face checkpoint directory may hold, in the order Hugging
# Face itself prefers them: the fast tokenizer's single file first.
HF_TOKENIZER_FILE = "tokenizer.json"
HF_VOCAB_FILE = "vocab.json"
HF_MERGES_FILE = "merges.txt"
HF_TOKENIZER_CONFIG_FILE = "tokenizer_config.json"

@keras.saving.register_keras_serializable(package="keras_longformer")
class LongformerTokenizer(BytePairTokenizer):
    """Longformer's tokenizer: RoBERTa's byte-level BPE and special tokens.

    Shapes: `B` batch, `S` tokens of a string (ragged across a batch).

    Turns raw text into the token ids a Longformer checkpoint was trained
    on, exactly as Hugging Face's `LongformerTokenizer` does: GPT-2's
    pre-tokenization regex, byte-level BPE, and the special tokens `<s>`,
    `<pad>`, `</s>`, `<unk>` and `<mask>` kept whole wherever they appear in
    the text. It adds no special tokens itself: the task preprocessors
    (`LongformerTextClassifierPreprocessor`, ...) pack `<s> ... </s>`.

    Encoding runs in the `tokenizers` library, configured as Hugging Face
    configures it (keras-hub's default Python path uses Llama 3's split
    regex instead, which cuts numbers into groups of three digits), eagerly
    and inside `tf.data` alike (there through `tf.py_function`: keras-hub's
    graph BPE differs from Hugging Face on runs of whitespace).

    Args:
        vocabulary: dict mapping tokens to ids, or the path of a
            `vocab.json`.
        merges: list of merge rules (`"a b"`), or the path of a
            `merges.txt`.
        add_prefix_space: bool, encode the text as if it began with a
            space (Hugging Face's `add_prefix_space`).
        mask_token_lstrip: bool, whether `<mask>` swallows the whitespace
            before it (Hugging Face's `lstrip` on the mask token, set in the
            `tokenizer.json` of `allenai/longformer-base-4096`): then
            `"a <mask>"` is `["a", "<mask>"]`, not `["a", "Ġ", "<mask>"]`.
        **kwargs: `keras_hub.tokenizers.BytePairTokenizer` arguments
            (`sequence_length`, `dtype`, `name`, ...).

    Call arguments:
        inputs: a string, or a batch of `B` strings (list, numpy array or
            `tf.Tensor`).

    Returns:
        The token ids: `[S]` for one string; `B` lists of ids (a
        `tf.RaggedTensor` `[B, None]` inside `tf.data`) for a batch.

    Example:

    >>> tokenizer = LongformerTokenizer.from_huggingface("longformer-base-4096/")
    >>> tokenizer("Hello world")
    array([31414, 232], dtype=int32)
    >>> tokenizer.detokenize([31414, 232])
    'Hello world'

    Reference:
    - [Liu et al., RoBERTa: A Robustly Optimized BERT Pretraining Approach,
      2019](https://arxiv.org/abs/1907.11692)
    """

    backbone_cls = LongformerBackbone

    def __init__(
        self,
        vocabulary=None,
        merges=None,
        add_prefix_space=False,
        mask_token_lstrip=False,
        **kwargs,
    ):
        check_bool("add_prefix_space", add_prefix_space)
        check_bool("mask_token_lstrip", mask_token_lstrip)
        self.mask_token_lstrip = mask_token_lstrip
        self._add_special_token("<s>", "start_token")
        self._add_special_token("</s>", "end_token")
        self._add_special_token("<pad>", "pad_token")
        self._add_special_token("<unk>", "unk_token")
        self._add_special_token("<mask>", "mask_token")
        super().__init__(
            vocabulary=vocabulary,
            merges=merges,
            add_prefix_space=add_prefix_space,
            **kwargs,
        )

    def _set_vocabulary_and_merges_tokenizers(self, vocabulary, merges):
        from tokenizers import AddedToken
        from tokenizers import pre_tokenizers

        super()._set_vocabulary_and_merges_tokenizers(vocabulary, merges)
        # RoBERTa's pre-tokenizer: byte-level with GPT-2's regex, as in
        # Hugging Face's `tokenizer.json` (keras-hub installs Llama 3's).
        self._tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(
            add_prefix_space=self.add_prefix_space, use_regex=True
        )
        if self.mask_token_lstrip:
            # Re-adding an existing added token updates its flags.
            self._tokenizer.add_special_tokens(
                [AddedToken(self.mask_token, lstrip=True, special=True, normalized=False)]
            )

    def _tokenize_tf(self, inputs):
        # keras-hub's graph BPE emulates GPT-2's regex without look-ahead
        # and differs from Hugging Face on runs of whitespace (a trailing
        # "  " is one token "ĠĠ" there, two here) and on text holding `६`.
        # `tf.data` therefore runs the same `tokenizers` encoder as eager
        # calls, through `tf.py_function`: the same ids in every path.
        import tensorflow as tf

        inputs = tf.convert_to_tensor(inputs, dtype=tf.string)
        if inputs.shape.rank is not None and inputs.shape.rank > 1:
            raise ValueError(
                "`inputs` must be a string or a batch of strings (rank 0 or 1). "
                f"Received: inputs of rank {inputs.shape.rank}"
            )
        unbatched = inputs.shape.rank == 0
        int_output = self.compute_dtype != "string"
        values, lengths = tf.py_function(
            self._encode_for_graph,
            [tf.reshape(inputs, [-1])],
            [tf.int32 if int_output else tf.string, tf.int64],
        )
        values.set_shape([None])
        lengths.set_shape([None])
        tokens = tf.RaggedTensor.from_row_lengths(values, lengths)
        if int_output:
            tokens = tf.cast(tokens, self.compute_dtype)
        if self.sequence_length:
            pad = self.pad_token_id if int_output else self.pad_token
            tokens = tokens.to_tensor(pad, shape=[None, self.sequence_length])
        return tokens[0] if unbatched else tokens

    def _encode_for_graph(self, texts):
        """Flat token values and row lengths of a batch, for `tf.py_function`."""
        import numpy as np

        self._maybe_initialized_tokenizers()
        texts = [text.decode("utf-8") for text in texts.numpy()]
        encodings = self._tokenizer.encode_batch(texts)
        rows = [e.ids if self.compute_dtype != "string" else e.tokens for e in encodings]
        lengths = np.array([len(row) for row in rows], "int64")
        flat = [value for row in rows for value in row]
        if self.compute_dtype != "string":
            return np.array(flat, "int32"), lengths
        return np.array(flat, dtype=object), lengths

    def get_config(self):
        config = super().get_config()
        config["mask_token_lstrip"] = self.mask_token_lstrip
        # Fixed by the class (its special tokens); not a constructor argument.
        config.pop("unsplittable_tokens", None)
        return config

    @classmethod
    def from_huggingface(cls, directory, **kwargs):
        """The tokenizer of a local Hugging Face checkpoint directory.

        Reads `tokenizer.json` (the fast tokenizer's file) when the
        directory has one, else `vocab.json` and `merges.txt` (with
        `add_prefix_space` from `tokenizer_config.json` when present).
        Nothing is downloaded.

        Args:
            directory: path of the checkpoint directory.
            **kwargs: further constructor arguments (`sequence_length`, ...).

        Returns:
            A `LongformerTokenizer` giving Hugging Face's ids.
        """
        directory = os.fspath(directory)
        if not os.path.isdir(directory):
            raise ValueError(
                f"`directory` must be a Hugging Face checkpoint directory. "
                f"Received: directory={directory!r}, which is not a directory"
            )
        tokenizer_json = os.path.join(directory, HF_TOKENIZER_FILE)
        vocab_json = os.path.join(directory, HF_VOCAB_FILE)
        merges_txt = os.path.join(directory, HF_MERGES_FILE)
        if os.path.isfile(tokenizer_json):
            arguments = _read_tokenizer_json(tokenizer_json)
        elif os.path.isfile(vocab_json) and os.path.isfile(merges_txt):
            arguments = _read_vocab_and_merges(directory)
        else:
            raise ValueError(
                f"No tokenizer files in {directory!r}: looked for "
                f"{HF_TOKENIZER_FILE!r}, or {HF_VOCAB_FILE!r} with "
                f"{HF_MERGES_FILE!r}. Received: directory={directory!r}"
            )
        return cls(**{**arguments, **kwargs})


def _read_vocab_and_merges(directory):
    with open(os.path.join(directory, HF_VOCAB_FILE), encoding="utf-8") as file:
        vocabulary = json.load(file)
    with open(os.path.join(directory, HF_MERGES_FILE), encoding="utf-8") as file:
        merges = [
            line.rstrip("\n")
            for line in file
            if line.strip() and not line.startswith("#version")
        ]
    add_prefix_space = False
    config_path = os.path.join(directory, HF_TOKENIZER_CONFIG_FILE)
    if os.path.isfile(config_path):
        with open(config_path, encoding="utf-8") as file:
            add_prefix_space = bool(json.load(file).get("add_prefix_space", False))
    return {"vocabulary": vocabulary, "merges": merges, "add_prefix_space": add_prefix_space}


def _byte_level_prefix_space(pre_tokenizer, path):
    """`add_prefix_space` of a RoBERTa-style (byte-level) pre-tokenizer."""
    found = pre_tokenizer
    if isinstance(pre_tokenizer, dict) and pre_tokenizer.get("type") == "Sequence":
        levels = [p for p in pre_tokenizer.get("pretokenizers", []) if p.get("type") == "ByteLevel"]
        found = levels[0] if len(levels) == 1 and len(pre_tokenizer["pretokenizers"]) == 1 else None
    if not isinstance(found, dict) or found.get("type") != "ByteLevel" or not found.get("use_regex", True):
        raise ValueError(
            f"{path!r} is not a RoBERTa byte-level BPE tokenizer: its pre_tokenizer "
            f"must be ByteLevel with GPT-2's regex. Received: pre_tokenizer={pre_tokenizer!r}"
        )
    return bool(found.get("add_prefix_space", False))


def _read_tokenizer_json(path):
    """Constructor arguments from a Hugging Face fast tokenizer file."""
    with open(path, encoding="utf-8") as file:
        spec = json.load(file)
    if "registered_name" in spec:
        raise ValueError(
            f"{path!r} is a keras-hub preset file, not a Hugging Face tokenizer: "
            f"load its directory with `LongformerTokenizer.from_preset`. "
            f"Received: registered_name={spec['registered_name']!r}"
        )
    model = spec.get("model") or {}
    if model.get("type") != "BPE":
        raise ValueError(
            f"{path!r} is not a BPE tokenizer. Received: model type={model.get('type')!r}"
        )
    if spec.get("normalizer") is not None:
        raise ValueError(
            f"{path!r} has a normalizer, which RoBERTa's tokenizer does not; its ids "
            f"would differ. Received: normalizer={spec['normalizer']!r}"
        )
    add_prefix_space = _byte_level_prefix_space(spec.get("pre_tokenizer"), path)
    vocabulary = dict(model["vocab"])
    mask_token_lstrip = False
    for added in spec.get("added_tokens", []):
        vocabulary[added["content"]] = added["id"]
        if added["content"] == "<mask>":
            mask_token_lstrip = bool(added.get("lstrip", False))
    # `tokenizers` >= 0.20 writes each merge as a pair, older ones as "a b".
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    return {
        "vocabulary": vocabulary,
        "merges": merges,
        "add_prefix_space": add_prefix_space,
        "mask_token_lstrip": mask_token_lstrip,
    }
