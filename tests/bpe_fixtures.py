"""A tiny byte-level BPE vocabulary in Hugging Face's file formats, made here.

Nothing is downloaded: `tokenizers` trains RoBERTa's kind of tokenizer
(byte-level BPE, special tokens `<s>`, `<pad>`, `</s>`, `<unk>`, `<mask>` as
ids 0 to 4) on a few generated sentences, and Hugging Face's
`LongformerTokenizerFast` writes the files a real checkpoint holds.
"""

import json
import os
import random

WORDS = (
    "the quick brown fox jumps over lazy dog long document attention window "
    "global token café naïve über Zürich 東京 données Ωmega 2024 12345 3.14 "
    "it's we'll don't I'M you're hello world Longformer question answer"
).split()
PUNCTUATION = [",", ".", "!", "?", ";", ":", "(", ")", "'", '"', "-"]
SPACES = [" ", " ", " ", "  ", "\t", "\n", "\n\n", " \u00a0", "\u3000", "\u2009"]
# RoBERTa's order: <s> 0, <pad> 1, </s> 2, <unk> 3, <mask> 4.
SPECIAL = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]

# Texts that stress the pre-tokenizer: runs of spaces, trailing spaces,
# unicode whitespace, emoji outside the training data, digits, contractions
# and the special tokens written inside the text.
EDGE_TEXTS = [
    "",
    " ",
    "x",
    "  leading and trailing spaces  ",
    "multiple   spaces\tand\ttabs\n\nnew lines\n",
    "café naïve über 東京 🙂 emoji 👍🏽 and Ωmega",
    "numbers 12345 678901 3.14159, it's we'll DON'T I'M",
    "a <mask> here, and<mask>there",
    "specials <s>inside</s> the <pad> text <unk>",
    "\u00a0nbsp\u3000ideographic\u2009thin\u202fnarrow",
    "unseenzzqqxx wörds!!! ???",
]


def random_text(rng, num_words):
    pieces = []
    for _ in range(num_words):
        pieces.append(rng.choice(WORDS))
        if rng.random() < 0.2:
            pieces.append(rng.choice(PUNCTUATION))
        if rng.random() < 0.05:
            pieces.append(rng.choice(SPECIAL))
        pieces.append(rng.choice(SPACES))
    return "".join(pieces)


def varied_texts(seed=0, count=24, max_words=30):
    rng = random.Random(seed)
    return EDGE_TEXTS + [random_text(rng, rng.randint(1, max_words)) for _ in range(count)]


def train_bpe(directory, vocab_size=500, seed=0):
    """Writes `vocab.json` and `merges.txt` of a byte-level BPE into `directory`."""
    from tokenizers import ByteLevelBPETokenizer

    rng = random.Random(seed)
    corpus = [random_text(rng, 12) for _ in range(300)]
    bpe = ByteLevelBPETokenizer(add_prefix_space=False)
    bpe.train_from_iterator(corpus, vocab_size=vocab_size, min_frequency=1, special_tokens=SPECIAL)
    os.makedirs(directory, exist_ok=True)
    bpe.save_model(str(directory))
    return str(directory)


def hf_tokenizer(directory, **kwargs):
    from transformers import LongformerTokenizerFast

    return LongformerTokenizerFast.from_pretrained(str(directory), **kwargs)


def checkpoint_dirs(root):
    """Three tokenizer directories under `root`, as Hugging Face writes them.

    `vocab_merges`: `vocab.json` + `merges.txt` only; `tokenizer_json`: the
    fast tokenizer's `tokenizer.json` only; `mask_lstrip`: a
    `tokenizer.json` whose `<mask>` strips the whitespace before it, as in
    `allenai/longformer-base-4096`.
    """
    vocab_merges = train_bpe(os.path.join(root, "vocab_merges"))
    tokenizer_json = os.path.join(root, "tokenizer_json")
    hf_tokenizer(vocab_merges).save_pretrained(tokenizer_json)
    for name in ("vocab.json", "merges.txt"):
        path = os.path.join(tokenizer_json, name)
        if os.path.exists(path):
            os.remove(path)
    mask_lstrip = os.path.join(root, "mask_lstrip")
    hf_tokenizer(vocab_merges).save_pretrained(mask_lstrip)
    spec_path = os.path.join(mask_lstrip, "tokenizer.json")
    with open(spec_path, encoding="utf-8") as file:
        spec = json.load(file)
    for added in spec["added_tokens"]:
        if added["content"] == "<mask>":
            added["lstrip"] = True
    with open(spec_path, "w", encoding="utf-8") as file:
        json.dump(spec, file)
    return {"vocab_merges": vocab_merges, "tokenizer_json": tokenizer_json, "mask_lstrip": mask_lstrip}
