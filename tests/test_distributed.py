"""Data-parallel training on two CPU devices equals training on one.

JAX: `keras.distribution.DataParallel` over two host devices
(`XLA_FLAGS=--xla_force_host_platform_device_count=2`). TensorFlow:
`tf.distribute.MirroredStrategy` over two logical CPU devices. Every task
model trains from the same saved weights in both modes, in its own process
(`tests/distributed_worker.py`); the losses and weights are compared here.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_longformer import models
from helpers import TESTS

VOCAB, PAD, LENGTH, SAMPLES = 40, 1, 24, 8
TASKS = ["classifier", "masked_lm", "token_classifier", "question_answering", "causal_lm"]


def backbone(**overrides):
    # One layer, its heads dilated 1 and 2: the checks are compile-bound
    # (ten training functions per backend), and what they compare, the
    # reduction of gradients and losses across replicas, is the same for
    # any depth.
    kwargs = dict(
        vocabulary_size=VOCAB, num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32,
        window=[3], dilation=[[1, 2]], max_sequence_length=64, pad_token_id=PAD,
        dropout=0.0, attention_dropout=0.0,
    )
    kwargs.update(overrides)
    return models.LongformerBackbone(**kwargs)


def task_model_and_labels(task, x, rng):
    """Each task with labels it can learn from its inputs (so that its loss
    falls, and equal losses and weights mean something)."""
    ids = x["token_ids"]
    if task == "classifier":
        model = models.LongformerClassifier(backbone(), num_classes=3, dropout=0.0)
        return model, {"labels": ids[:, 1] % 3}  # the token beside the global <s>
    if task == "masked_lm":
        # The same number of masked tokens in every row, so that each
        # replica's mean is over as many tokens as the global mean.
        labels = np.full_like(ids, -100)
        labels[:, 3:9] = 5  # one token at every masked position: learnable in a few steps
        return models.LongformerMaskedLM(backbone()), {"labels": labels}
    if task == "token_classifier":
        model = models.LongformerTokenClassifier(backbone(), num_classes=4, dropout=0.0)
        return model, {"labels": np.where(ids < 20, 1, 2)}  # which half of the vocabulary
    if task == "question_answering":
        return models.LongformerQuestionAnswering(backbone()), {
            "start_logits": np.full((SAMPLES,), 2), "end_logits": np.full((SAMPLES,), 5),
        }
    model = models.LongformerCausalLM(backbone(causal=True))
    return model, {"labels": np.concatenate([ids[:, 1:], ids[:, -1:]], axis=1)}


def features(rng):
    ids = rng.integers(3, VOCAB, (SAMPLES, LENGTH))
    ids[:, 1::2] = ids[:, 0::2]  # every other token repeats the one before: a causal LM can learn it
    glob = np.zeros_like(ids)
    glob[:, 0] = 1
    glob[::3, 5:8] = 1
    return {"token_ids": ids, "padding_mask": np.ones_like(ids), "global_mask": glob}


@pytest.fixture(scope="module")
def saved_tasks(tmp_path_factory):
    directory = tmp_path_factory.mktemp("distributed")
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    for task in TASKS:
        x = features(rng)
        model, labels = task_model_and_labels(task, x, rng)
        # The task's own loss; plain SGD at a rate each task descends with for 3 epochs.
        model.compile(optimizer=keras.optimizers.SGD(0.05 if task == "token_classifier" else 0.2))
        model.save(str(directory / f"{task}.keras"))
        np.savez(str(directory / f"{task}.npz"), **x, **labels)
    return directory


def run_worker(backend, directory):
    env = dict(os.environ, KERAS_BACKEND=backend)
    if backend == "jax":
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2"
    result = subprocess.run(
        [sys.executable, os.path.join(TESTS, "distributed_worker.py"), str(directory)],
        capture_output=True, text=True, env=env, timeout=1200,
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_data_parallel_equals_one_device_for_every_task(saved_tasks, backend):
    run_worker(backend, saved_tasks)
    for task in TASKS:
        single = np.load(str(saved_tasks / f"single_{backend}_{task}.npz"))
        parallel = np.load(str(saved_tasks / f"parallel_{backend}_{task}.npz"))
        assert np.all(np.isfinite(single["losses"])), task
        # It learned (the loss fell every epoch), so equal losses and weights mean something.
        assert np.all(np.diff(single["losses"]) < -1e-3), (task, single["losses"])
        assert np.max(np.abs(parallel["losses"] - single["losses"])) <= 1e-5, task
        weights = [k for k in single.files if k.startswith("w")]
        worst = max(np.max(np.abs(parallel[k] - single[k])) for k in weights)
        assert worst <= 1e-5, (task, worst)
