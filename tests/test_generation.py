"""LongformerCausalLM.generate: the windowed cache gives the tokens a full forward pass gives."""

import keras
import numpy as np
import pytest

from keras_longformer.models import windowed_cache
from keras_longformer.models.longformer_backbone import LongformerBackbone
from keras_longformer.models.longformer_causal_lm import LongformerCausalLM

VOCAB = 50
PAD = 1
# Layer 0: window 3; layer 1: window 2 with heads dilated 1 and 3, so the
# ring of layer 1 holds 2 * 3 + 1 = 7 positions and generation runs far past
# every window (the prompts are 3 to 9 tokens, generation goes to 28).
WINDOWS = [3, 2]
DILATIONS = [1, [1, 3]]
MAX_LENGTH = 28


def causal_lm(max_sequence_length=40, sampler="greedy", run_eagerly=True):
    """A small causal LM; eager generation by default (tracing the loop costs
    more than running these few steps), compiled where a test says so."""
    keras.utils.set_random_seed(7)
    backbone = LongformerBackbone(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        window=WINDOWS,
        dilation=DILATIONS,
        causal=True,
        max_sequence_length=max_sequence_length,
        pad_token_id=PAD,
        dropout=0.0,
        attention_dropout=0.0,
    )
    # Larger weights than the initialiser's, so the greedy choice is not a
    # near-tie that rounding could flip, and the window matters.
    rng = np.random.default_rng(0)
    for variable in backbone.weights:
        if len(variable.shape) >= 2:
            variable.assign(rng.normal(0, 0.5, variable.shape).astype("float32"))
    model = LongformerCausalLM(backbone)
    model.compile(sampler=sampler, run_eagerly=run_eagerly)
    return model


def prompts(lengths=(3, 9, 5)):
    rng = np.random.default_rng(0)
    token_ids = np.full((len(lengths), MAX_LENGTH), PAD, "int32")
    for row, length in enumerate(lengths):
        token_ids[row, :length] = rng.integers(3, VOCAB, length)
    return {"token_ids": token_ids, "padding_mask": token_ids != PAD}


def as_numpy(outputs):
    return {key: keras.ops.convert_to_numpy(value) for key, value in outputs.items()}


@pytest.fixture(scope="module")
def model():
    return causal_lm()


@pytest.fixture(scope="module")
def generated(model):
    return as_numpy(model.generate(prompts(), stop_token_ids=None))


def test_cached_generation_equals_full_forward_passes(model, generated):
    uncached = as_numpy(model.generate(prompts(), stop_token_ids=None, use_cache=False))
    np.testing.assert_array_equal(generated["token_ids"], uncached["token_ids"])
    # Compiled (keras-hub's tf.function with XLA on TensorFlow): the same tokens.
    compiled = causal_lm(run_eagerly=False)
    compiled_tokens = as_numpy(compiled.generate(prompts(), stop_token_ids=None))["token_ids"]
    np.testing.assert_array_equal(compiled_tokens, generated["token_ids"])
    # The prompts are kept, every position after them is generated, never <pad>.
    inputs = prompts()
    real = inputs["padding_mask"]
    np.testing.assert_array_equal(generated["token_ids"][real], inputs["token_ids"][real])
    assert not (generated["token_ids"] == PAD).any()
    # Not a constant continuation: the model's context matters.
    assert len(np.unique(generated["token_ids"][:, 10:])) > 3


def test_greedy_tokens_are_the_argmax_of_the_plain_model(model, generated):
    """Each generated token is the argmax of the model called on the sequence so far."""
    tokens = generated["token_ids"]
    for end in (9, 15, 27):
        prefix = tokens[:, :end]
        logits = keras.ops.convert_to_numpy(
            model({"token_ids": prefix, "padding_mask": np.ones_like(prefix), "global_mask": np.zeros_like(prefix)})
        )
        logits[..., PAD] = -np.inf
        np.testing.assert_array_equal(tokens[:, end], logits[:, end - 1].argmax(-1))


def test_cache_holds_window_times_dilation_per_layer(model):
    inputs = prompts()
    cache = windowed_cache.seed_cache(
        model.backbone,
        inputs["token_ids"],
        inputs["padding_mask"],
        keras.ops.convert_to_tensor(1),
    )
    sizes = [keys.shape[1] for keys, _ in cache]
    assert sizes == [3 * 1 + 1, 2 * 3 + 1]  # window * max dilation + 1, not MAX_LENGTH
    for keys, values in cache:
        assert keys.shape == values.shape == (3, keys.shape[1], 2, 8)


@pytest.mark.parametrize("sampler", ["top_k", "top_p"])
def test_sampling_generation_runs_with_keras_hub_samplers(sampler):
    keras.utils.set_random_seed(3)
    lm = causal_lm(sampler=sampler)
    outputs = as_numpy(lm.generate(prompts(), stop_token_ids=None))
    tokens = outputs["token_ids"]
    assert tokens.shape == (3, MAX_LENGTH) and outputs["padding_mask"].all()
    assert ((tokens >= 0) & (tokens < VOCAB) & (tokens != PAD)).all()


def test_stop_token_ends_a_row(model, generated):
    stop = int(generated["token_ids"][0, 3])  # the first token generated for row 0
    outputs = as_numpy(model.generate(prompts(), stop_token_ids=[stop]))
    assert outputs["token_ids"][0, 3] == stop
    assert not outputs["padding_mask"][0, 4:].any()


def test_generation_past_max_sequence_length_is_an_error():
    model = causal_lm(max_sequence_length=20)
    with pytest.raises(ValueError, match=r"max_sequence_length=20\. Received: max_length=28"):
        model.generate(prompts(), stop_token_ids=None)


def test_prompt_with_global_tokens_is_an_error(model):
    inputs = prompts()
    inputs["global_mask"] = np.zeros_like(inputs["token_ids"])
    inputs["global_mask"][:, 0] = 1
    with pytest.raises(ValueError, match="without global tokens"):
        model.generate(inputs, stop_token_ids=None)


def test_string_prompts_through_the_preprocessor(tmp_path):
    from bpe_fixtures import checkpoint_dirs

    from keras_longformer.models.longformer_causal_lm_preprocessor import LongformerCausalLMPreprocessor
    from keras_longformer.models.longformer_tokenizer import LongformerTokenizer

    tokenizer = LongformerTokenizer.from_huggingface(checkpoint_dirs(str(tmp_path))["tokenizer_json"])
    keras.utils.set_random_seed(5)
    backbone = LongformerBackbone(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=32, window=WINDOWS, dilation=DILATIONS, causal=True, max_sequence_length=40,
    )
    preprocessor = LongformerCausalLMPreprocessor(tokenizer, sequence_length=24)
    model = LongformerCausalLM(backbone, preprocessor=preprocessor)
    model.compile(sampler="greedy", run_eagerly=True)
    texts = ["the quick brown", "hello"]
    cached = model.generate(texts, max_length=20, stop_token_ids=None)
    uncached = model.generate(texts, max_length=20, stop_token_ids=None, use_cache=False)
    assert cached == uncached
    assert [text.startswith(prompt) for text, prompt in zip(cached, texts)] == [True, True]
    long_prompt = "the quick brown fox jumps over the lazy dog " * 3
    with pytest.raises(ValueError, match=r"max_length=10.*Received: a prompt of \d+ tokens, max_length=10"):
        model.generate([long_prompt], max_length=10)
