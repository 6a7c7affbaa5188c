"""`CompileRoundTrip`: a loaded task is compiled as it was saved."""

import keras

# A key of our compile config: whether the saved optimizer had been built.
_OPTIMIZER_BUILT = "keras_longformer_optimizer_built"


class CompileRoundTrip:
    """Mixin of the tasks: `save` keeps their compile, `load_model` restores it.

    Keras does not recompile a loaded model whose `compile` is overridden
    (every keras-hub task's is: "auto" defaults, a sampler); it warns
    instead, and the task's `__init__` compiles it with the defaults, so a
    trained optimizer's state no longer matches and is dropped with a second
    warning. With this mixin the saved config is compiled again, the
    optimizer (its state restored by Keras), loss, metrics, `jit_compile`
    and a generating task's `sampler` included.

    A task sets `self._jit_compile_requested` in its `compile`.
    """

    def get_compile_config(self):
        # Keras builds the optimizer of a loaded model before restoring its
        # variables; one saved before any training step has no slots yet, and
        # Keras would then warn that the saved optimizer does not match. The
        # config says whether to build it, so the user's own optimizer and
        # loss always come back as compiled.
        config = super().get_compile_config()
        if config is not None:
            optimizer = getattr(self, "optimizer", None)
            config[_OPTIMIZER_BUILT] = optimizer is not None and optimizer.built
            if getattr(self, "_jit_compile_requested", None) == "auto":
                # Keras saves "auto" as this backend resolved it: True on
                # JAX, which on torch means torch.compile (minutes of dynamo
                # recompiles for a loaded file's first predict). Each backend
                # resolves "auto" for itself.
                config["jit_compile"] = "auto"
            sampler = getattr(self, "sampler", None)
            if sampler is not None:
                config["sampler"] = keras.saving.serialize_keras_object(sampler)
        return config

    def compile_from_config(self, config):
        """Recompiles a loaded model as it was saved (optimizer state included)."""
        config = dict(config)
        build_optimizer = config.pop(_OPTIMIZER_BUILT, True)
        self.compile(**keras.saving.deserialize_keras_object(config))
        if build_optimizer and getattr(self, "optimizer", None) is not None and self.built:
            self.optimizer.build(self.trainable_variables)
