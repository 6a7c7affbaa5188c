"""Writes one kind of output over and over (over itself), for
tests/test_faults.py to kill at a random moment.

    python fault_worker.py export|convert|preset|triton TARGET [SOURCE]

Prints `ready SECONDS` once the first write is complete (the earlier output
the test expects to survive), then writes again until killed.
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def writer(op, target, source):
    if op == "export":
        import keras

        from helpers import small_backbone
        from keras_longformer.export import export_onnx

        keras.utils.set_random_seed(0)
        model = small_backbone()
        return lambda: export_onnx(model, target, lengths=[5], overwrite=True)
    if op == "convert":
        from keras_longformer import cli

        return lambda: cli.main(["convert", source, target, "--force", "--quiet"])
    if op == "preset":
        import keras

        from helpers import small_backbone
        from keras_longformer.models.preset_files import save_preset

        keras.utils.set_random_seed(0)
        model = small_backbone()
        return lambda: save_preset(model, target, overwrite=True)
    if op == "triton":
        from keras_longformer.export import write_triton_repository

        repository, name = os.path.split(target)
        return lambda: write_triton_repository(source, repository, model_name=name, max_batch_size=0,
                                               instance_kind="cpu", overwrite=True)
    raise SystemExit(f"unknown op {op!r}")


def main():
    op, target = sys.argv[1], sys.argv[2]
    write = writer(op, target, sys.argv[3] if len(sys.argv) > 3 else None)
    start = time.perf_counter()
    write()
    print(f"ready {time.perf_counter() - start:.3f}", flush=True)
    while True:
        write()


if __name__ == "__main__":
    main()
