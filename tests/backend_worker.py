"""One backend's side of the cross-backend checks (run with KERAS_BACKEND set).

    python tests/backend_worker.py train DIR   # initial.keras -> steps, predictions
    python tests/backend_worker.py load DIR    # every trained_*.keras -> predictions

`train` loads `DIR/initial.keras` (a token classifier, dropout off, saved by
the test), runs a few SGD steps on `DIR/data.npz`, and writes the losses,
the predictions after the steps, which trainable weights moved, and
`DIR/trained_<backend>.keras`. `load` predicts with every trained file it
finds, whichever backend saved it. `tests/test_backend_matrix.py` compares
the numbers across backends.
"""

import glob
import os
import sys

import keras
import numpy as np

import keras_longformer  # noqa: F401  (registers the classes)

STEPS = 3


def features(data):
    return {name: data[name] for name in ("token_ids", "padding_mask", "global_mask")}


def train(directory):
    backend = keras.backend.backend()
    data = np.load(os.path.join(directory, "data.npz"))
    model = keras.models.load_model(os.path.join(directory, "initial.keras"), compile=False)
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.5),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    losses = [
        float(model.train_on_batch(features(data), data["labels"], return_dict=True)["loss"])
        for _ in range(STEPS)
    ]
    after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    moved = [bool(np.any(a != b)) for a, b in zip(after, before)]
    names = np.array([w.path for w in model.trainable_weights])
    predictions = keras.ops.convert_to_numpy(model.predict_on_batch(features(data)))
    model.save(os.path.join(directory, f"trained_{backend}.keras"))
    np.savez(
        os.path.join(directory, f"train_{backend}.npz"),
        losses=np.array(losses),
        predictions=predictions,
        moved=np.array(moved),
        names=names,
    )


def load(directory):
    backend = keras.backend.backend()
    data = np.load(os.path.join(directory, "data.npz"))
    results = {}
    for path in sorted(glob.glob(os.path.join(directory, "trained_*.keras"))):
        saved_by = os.path.basename(path)[len("trained_") : -len(".keras")]
        model = keras.models.load_model(path)
        results[saved_by] = keras.ops.convert_to_numpy(model.predict_on_batch(features(data)))
        results[f"{saved_by}_jit_compile"] = np.array(bool(model.jit_compile))
    np.savez(os.path.join(directory, f"load_{backend}.npz"), **results)


if __name__ == "__main__":
    phase, directory = sys.argv[1], sys.argv[2]
    {"train": train, "load": load}[phase](directory)
