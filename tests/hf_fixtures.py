"""Small random Hugging Face Longformer checkpoints, written with save_pretrained.

Nothing is downloaded: configs are built here, weights drawn at random
(larger than Hugging Face's 0.02 initialisation, so that a wrong mapping
shows up as a large error, not a small one).
"""

import os

import numpy as np

PAD = 1
VOCAB = 61
# Three layers with different windows (Hugging Face's two-sided spans 8, 4,
# 16: our one-sided 4, 2, 8). Hugging Face itself crashes with span 2, and
# needs every span to divide the largest.
SPANS = [8, 4, 16]


def hf_config(**overrides):
    from transformers import LongformerConfig

    kwargs = dict(
        vocab_size=VOCAB,
        hidden_size=16,
        num_hidden_layers=len(SPANS),
        num_attention_heads=2,
        intermediate_size=24,
        attention_window=list(SPANS),
        max_position_embeddings=400 + PAD + 1,
        pad_token_id=PAD,
        bos_token_id=0,
        eos_token_id=2,
        type_vocab_size=1,
        num_labels=3,
    )
    kwargs.update(overrides)
    return LongformerConfig(**kwargs)


def random_hf_model(cls_name="LongformerModel", seed=0, **overrides):
    import torch
    import transformers

    torch.manual_seed(seed)
    model = getattr(transformers, cls_name)(hf_config(**overrides)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.3)
    return model


def save(model, directory, fmt="safetensors"):
    """Writes `model` as `model.safetensors` or a legacy `pytorch_model.bin`."""
    import torch

    model.save_pretrained(directory)
    if fmt == "bin":
        os.remove(os.path.join(directory, "model.safetensors"))
        torch.save(model.state_dict(), os.path.join(directory, "pytorch_model.bin"))
    return str(directory)


def batch(length, pattern, seed=0, batch_size=3):
    """Token ids, padding and global masks for a batch with different padding.

    Row 0 is full; row 1 loses its last third; row 2 keeps only its first
    token plus a quarter. Padded positions hold `PAD`, as a tokenizer
    writes them. `pattern`: "none", "first", "middle" or "many" (more
    global tokens than any window, a different count per row).
    """
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, VOCAB, (batch_size, length))
    padding = np.ones((batch_size, length), "int64")
    if batch_size > 1:
        padding[1, max(1, length - length // 3) :] = 0
    if batch_size > 2:
        padding[2, max(1, length // 4) :] = 0
    ids[padding == 0] = PAD
    glob = np.zeros((batch_size, length), "int64")
    if pattern == "first":
        glob[:, 0] = 1
    elif pattern == "middle":
        glob[:, length // 2] = 1
        glob[:, (2 * length) // 3] = 1
    elif pattern == "many":
        glob[0, ::2] = 1
        glob[1:, 1::3] = 1
    elif pattern != "none":
        raise ValueError(pattern)
    return ids, padding, glob


def hf_outputs(model, ids, padding, glob, pattern):
    import torch

    kwargs = dict(attention_mask=torch.tensor(padding))
    if pattern != "none":
        kwargs["global_attention_mask"] = torch.tensor(glob)
    with torch.no_grad():
        return model(torch.tensor(ids), **kwargs)
