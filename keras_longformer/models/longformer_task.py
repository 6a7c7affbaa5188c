import keras

from keras_longformer.models.global_token_check import GlobalTokenCheck


class LongformerTask(GlobalTokenCheck, keras.Model):
    """Base of the task models: a functional model on a `LongformerBackbone`.

    Subclasses build their graph on `backbone.input` (the dict of
    `token_ids`, `padding_mask`, `global_mask`) and call
    `super().__init__(inputs=..., outputs=...)`. This base serializes the
    backbone in `get_config`, rebuilds it in `from_config`, and fills in
    `compile()` defaults ("auto") from `_default_compile`.
    """

    def _task_config(self):
        return {}

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            **self._task_config(),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)

    def _default_compile(self):
        """`(optimizer, loss, metrics)` used for "auto"."""
        raise NotImplementedError

    def compile_from_config(self, config):
        """Recompiles a loaded model as it was saved (optimizer state included)."""
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if getattr(self, "optimizer", None) is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        """`keras.Model.compile`, where "auto" picks the task's defaults."""
        default_optimizer, default_loss, default_metrics = self._default_compile()
        super().compile(
            optimizer=default_optimizer if optimizer == "auto" else optimizer,
            loss=default_loss if loss == "auto" else loss,
            metrics=default_metrics if metrics == "auto" else metrics,
            **kwargs,
        )


def freeze_unused_pooler(backbone):
    """Freezes the pooler of a task that does not read `pooled_output`.

    Its weights cannot change such a task's outputs, so they get no
    gradient; frozen, the optimizer does not warn about them. Hugging Face's
    `LongformerFor*` classes other than sequence classification have no
    pooler at all.
    """
    backbone.pooler_dense.trainable = False


def check_backbone(backbone, cls_name):
    from keras_longformer.models.longformer_backbone import LongformerBackbone

    if not isinstance(backbone, LongformerBackbone):
        raise ValueError(
            f"`backbone` of {cls_name} must be a LongformerBackbone. "
            f"Received: backbone={backbone!r}"
        )


def fine_tuning_optimizer():
    """AdamW at 5e-5 with weight decay 0.01 and gradient clipping."""
    return keras.optimizers.AdamW(
        learning_rate=5e-5, weight_decay=0.01, global_clipnorm=1.0
    )
