"""Every batch of `fit`, `evaluate` and `predict` checked against the global-token bound."""

import keras

from keras_longformer.ops.global_tokens import check_batch_global_tokens


class GlobalTokenCheck:
    """Mixin: checks global tokens against the bound before any work.

    Data held in memory (dicts of arrays) is checked whole when `fit`,
    `evaluate` or `predict` is called, on every backend where a bound is in
    force (set by the user, or JAX's default).

    On JAX the number of global tokens is a static bound
    (`max_global_tokens`), and the compiled step cannot raise. The batches
    that `fit`, `evaluate`, `predict` and the `*_on_batch` methods feed it
    are still concrete on the host, so each is checked just before the
    compiled step is called: a row over the bound is a `ValueError` naming
    it, before any work. TensorFlow and torch read the number of global
    tokens from the data, so nothing needs checking there.

    Keras's JAX trainer takes the variables' values out of the model while
    its loop runs; when a batch is refused they are put back, so the model
    keeps every step taken before it.

    The bound is the model's `max_global_tokens`, or its backbone's.
    """

    def _global_token_bound(self):
        owner = getattr(self, "backbone", None) or self
        return getattr(owner, "max_global_tokens", None)

    def check_global_tokens_of(self, x):
        """Raises if in-memory features `x` hold a row over the bound."""
        check_batch_global_tokens(x, self._global_token_bound())

    def fit(self, x=None, y=None, *args, **kwargs):
        self.check_global_tokens_of(x)
        return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self.check_global_tokens_of(x)
        return super().evaluate(x, y, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        self.check_global_tokens_of(x)
        return super().predict(x, *args, **kwargs)

    def make_train_function(self, force=False):
        super().make_train_function(force=force)
        self.train_function = self._checking(self.train_function, "train")

    def make_test_function(self, force=False):
        super().make_test_function(force=force)
        self.test_function = self._checking(self.test_function, "test")

    def make_predict_function(self, force=False):
        super().make_predict_function(force=force)
        self.predict_function = self._checking(self.predict_function, "predict")

    def _checking(self, step_function, kind):
        if (
            step_function is None
            or getattr(step_function, "checks_global_tokens", False)
            or keras.backend.backend() != "jax"
        ):
            return step_function
        bound = self._global_token_bound()

        # Keras's JAX trainer calls `step(state, batches)`, where `batches`
        # is an iterator the step draws from (or, in older Keras, the batch).
        def checked_step(state, batches):
            def check(batch):
                try:
                    check_batch_global_tokens(batch, bound)
                except ValueError:
                    self._restore_variables(kind, state)
                    raise
                return batch

            if hasattr(batches, "__next__"):
                batches = map(check, batches)
            else:
                check(batches)
            return step_function(state, batches)

        checked_step.checks_global_tokens = True
        return checked_step

    def _restore_variables(self, kind, state):
        """Puts the values of a JAX step's `state` back into the variables."""
        groups = [self.trainable_variables, self.non_trainable_variables]
        if kind == "train":
            groups.append(self.optimizer.variables)
        if kind in ("train", "test"):
            groups.append(self.metrics_variables)
        for variables, values in zip(groups, state):
            for variable, value in zip(variables, values):
                variable.assign(value)
