import keras
from keras import ops

from keras_longformer.models.compile_round_trip import CompileRoundTrip
from keras_longformer.models.features_or_text import FeaturesOrText
from keras_longformer.models.global_token_check import GlobalTokenCheck
from keras_longformer.models.longformer_backbone import LongformerBackbone

# What `predict` on raw text fills the padded tail of per-token outputs with:
# low enough that no argmax over positions picks it, finite so that a
# softmax over it stays a number.
PREDICTION_PAD_VALUE = -1e9


class LongformerTask(CompileRoundTrip, FeaturesOrText, GlobalTokenCheck):
    """Mixin of the task models: a keras-hub `Task` on a `LongformerBackbone`.

    A task lists it before its keras-hub base (`class LongformerMaskedLM(
    LongformerTask, keras_hub.models.MaskedLM)`, or `Task` itself when
    keras-hub has no such task); a mixin rather than a `Task` subclass,
    because Keras's functional-model class injection breaks on a diamond
    (`Task` reached twice). Subclasses build their graph on
    `backbone.input` (the dict of `token_ids`, `padding_mask`,
    `global_mask`) and call `super().__init__(inputs=..., outputs=...,
    backbone=..., preprocessor=...)`. keras-hub's `Task` brings `from_preset`,
    `save_to_preset` and preprocessing inside `fit`, `evaluate` and
    `predict`; this base adds:

    - the feature dict still works with a preprocessor attached (it is
      recognised and passed through), and without one `fit`, `evaluate`
      and `predict` are plain Keras (numpy inputs are shuffled, batched and
      checked as before);
    - `predict` on raw text pads per-token outputs of every batch to the
      preprocessor's longest (batches run at their own longest row, so
      their outputs differ in length) with `PREDICTION_PAD_VALUE`;
    - `compile()` defaults ("auto") from `_default_compile`.
    """

    backbone_cls = LongformerBackbone

    def __init__(self, inputs, outputs, backbone, preprocessor=None, compile=True, **kwargs):
        self.backbone = backbone
        self.preprocessor = preprocessor
        self._prediction_width = None
        self._padded_predict = None
        super().__init__(inputs=inputs, outputs=outputs, compile=False, **kwargs)
        self._compile_after_init = compile

    # Whether the task's head reads `pooled_output`; if not, its pooler is frozen.
    reads_pooled_output = False

    def _finish_init(self):
        """Freezes an unused pooler and compiles with the defaults, once the
        subclass has set its config.

        After the functional init, which applies the config's `trainable` to
        every layer (a loaded task would otherwise train its pooler again).
        """
        if not self.reads_pooled_output:
            freeze_unused_pooler(self.backbone)
        if self._compile_after_init:
            self.compile()

    def _task_config(self):
        return {}

    def get_config(self):
        config = {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.layers.serialize(self.backbone),
            "preprocessor": keras.layers.serialize(self.preprocessor),
            **self._task_config(),
        }
        head_policies = quantized_head_policies(self)
        if head_policies is not None:
            config["dtype"] = keras.dtype_policies.serialize(head_policies)
        return config

    # === Compilation ===

    def _default_compile(self):
        """`(optimizer, loss, metrics)` used for "auto"."""
        raise NotImplementedError

    def compile(self, optimizer="auto", loss="auto", metrics="auto", jit_compile="auto", **kwargs):
        """`keras.Model.compile`, where "auto" picks the task's defaults.

        `jit_compile="auto"` is saved as "auto" (not as this backend's
        choice), so that a file saved under JAX loads eagerly on torch.
        """
        default_optimizer, default_loss, default_metrics = self._default_compile()
        super().compile(
            optimizer=default_optimizer if optimizer == "auto" else optimizer,
            loss=default_loss if loss == "auto" else loss,
            metrics=default_metrics if metrics == "auto" else metrics,
            jit_compile=jit_compile,
            **kwargs,
        )
        self._jit_compile_requested = jit_compile

    # === Preprocessing inside fit, evaluate and predict ===

    def preprocess_samples(self, x, y=None, sample_weight=None):
        if isinstance(x, dict):  # already the backbone's features
            return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
        return super().preprocess_samples(x, y, sample_weight)

    def _per_token_width(self):
        """The padded length of per-token outputs in `predict` on raw text (None: none)."""
        return None

    def predict(self, x=None, batch_size=None, **kwargs):
        self.check_global_tokens_of(x)
        if self._takes_features(x):
            return keras.Model.predict(self, x, batch_size=batch_size, **kwargs)
        width = self._per_token_width()
        if width is None:
            return super().predict(x, batch_size=batch_size, **kwargs)
        # Batches of raw text run at their own longest row, so per-token
        # outputs differ in length: a second predict function, kept beside
        # Keras's own, pads them to `width` (see `predict_step`).
        plain = self.predict_function
        padded = getattr(self, "_padded_predict", None)
        self.predict_function = padded[1] if padded and padded[0] == width else None
        self._prediction_width = width
        try:
            return super().predict(x, batch_size=batch_size, **kwargs)
        finally:
            self._padded_predict = (width, self.predict_function)
            self._prediction_width, self.predict_function = None, plain

    def predict_step(self, *args):
        # TensorFlow and torch: `predict_step(data)` returns the outputs;
        # JAX: `predict_step(state, data)` returns `(outputs, state)`.
        outputs = super().predict_step(*args)
        width = self._prediction_width
        if width is None:
            return outputs

        def pad(predictions):
            return keras.tree.map_structure(lambda t: pad_axis_1(t, width), predictions)

        if keras.backend.backend() == "jax":
            predictions, state = outputs
            return pad(predictions), state
        return pad(outputs)

    # === Presets: weights, not training state ===

    def _not_task_weights(self):
        """What a preset's task weights leave out: the backbone, and the optimizer's slots."""
        skipped = list(self.backbone._flatten_layers())
        if getattr(self, "optimizer", None) is not None:
            # A task loaded from a preset compiles afresh; slots saved from a
            # trained optimizer would not fit its unbuilt one (Keras warns).
            skipped.append(self.optimizer)
        return skipped

    def save_task_weights(self, filepath):
        """keras-hub's, without the optimizer's state."""
        if not str(filepath).endswith(".weights.h5"):
            raise ValueError(f"The filename must end in `.weights.h5`. Received: filepath={filepath}")
        keras.saving.save_weights(self, filepath=filepath, objects_to_skip=self._not_task_weights())

    def load_task_weights(self, filepath):
        """keras-hub's, without the optimizer's state."""
        if not str(filepath).endswith(".weights.h5"):
            raise ValueError(f"The filename must end in `.weights.h5`. Received: filepath={filepath}")
        keras.saving.load_weights(self, filepath, objects_to_skip=self._not_task_weights())


def pad_axis_1(tensor, width):
    """`tensor` `[B, T, ...]` padded to `[B, width, ...]` with `PREDICTION_PAD_VALUE`."""
    missing = width - ops.shape(tensor)[1]
    padding = [[0, 0], [0, missing]] + [[0, 0]] * (len(tensor.shape) - 2)
    return ops.pad(tensor, padding, constant_values=PREDICTION_PAD_VALUE)


def _resolved_policy(layer):
    policy = layer.dtype_policy
    if isinstance(policy, keras.dtype_policies.DTypePolicyMap):
        return policy[layer.path]
    return policy


def quantized_head_policies(task):
    """The head's quantized layers as a `DTypePolicyMap` (None if there are none).

    `task.quantize("int8")` changes the head's layers in place, and the
    config of a task holds only its arguments, so a reloaded task would
    build a float head that its saved integer weights do not fit. Given as
    the task's `dtype`, the map rebuilds each of those layers quantized
    (keras-hub's `Backbone.get_config` does the same for the backbone).
    """
    in_backbone = {id(layer) for layer in task.backbone._flatten_layers()}
    quantized = {
        layer.path: _resolved_policy(layer)
        for layer in task._flatten_layers(include_self=False)
        if id(layer) not in in_backbone and layer.quantization_mode is not None
    }
    if not quantized:
        return None
    default = task.backbone.dtype_policy
    if isinstance(default, keras.dtype_policies.DTypePolicyMap):
        default = default.default_policy
    policies = keras.dtype_policies.DTypePolicyMap(default_policy=default)
    for path, policy in quantized.items():
        policies[path] = policy
    return policies


def freeze_unused_pooler(backbone):
    """Freezes the pooler of a task that does not read `pooled_output`.

    Its weights cannot change such a task's outputs, so they get no
    gradient; frozen, the optimizer does not warn about them. Hugging Face's
    `LongformerFor*` classes other than sequence classification have no
    pooler at all.
    """
    backbone.pooler_dense.trainable = False


def check_backbone(backbone, cls_name):
    if not isinstance(backbone, LongformerBackbone):
        raise ValueError(
            f"`backbone` of {cls_name} must be a LongformerBackbone. "
            f"Received: backbone={backbone!r}"
        )


def check_preprocessor(preprocessor, expected_cls, cls_name):
    if preprocessor is not None and not isinstance(preprocessor, expected_cls):
        raise ValueError(
            f"`preprocessor` of {cls_name} must be a {expected_cls.__name__} or None. "
            f"Received: preprocessor={preprocessor!r}"
        )


def fine_tuning_optimizer():
    """AdamW at 5e-5 with weight decay 0.01 and gradient clipping."""
    return keras.optimizers.AdamW(
        learning_rate=5e-5, weight_decay=0.01, global_clipnorm=1.0
    )
