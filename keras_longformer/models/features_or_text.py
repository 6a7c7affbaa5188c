"""`FeaturesOrText`: a task's `fit`, `evaluate` and `predict` on its
backbone's features, or on raw text."""

import keras

from keras_longformer.models.preprocessing_utils import is_dataset
from keras_longformer.models.preprocessing_utils import shuffled_batches


class FeaturesOrText:
    """Mixin of the tasks: features go to plain Keras, raw text to keras-hub.

    The backbone's features (its dict of arrays; any input when there is no
    preprocessor) go to `keras.Model.fit`, `evaluate` and `predict` as Keras
    takes arrays: checked, batched and shuffled every epoch. Raw text goes
    through keras-hub, which preprocesses it inside the loop but batches
    in-memory samples in order (Keras then warns that `shuffle=True` is
    ignored): it is shuffled here instead, anew every epoch, as Keras does
    for arrays.

    A task says which inputs are features in `_takes_features(x)`; it lists
    this mixin before `GlobalTokenCheck`.
    """

    def _takes_features(self, x):
        return self.preprocessor is None or isinstance(x, dict)

    def fit(self, x=None, y=None, batch_size=None, sample_weight=None, shuffle=True, **kwargs):
        self.check_global_tokens_of(x)
        if self._takes_features(x):
            return keras.Model.fit(
                self, x, y, batch_size=batch_size, sample_weight=sample_weight, shuffle=shuffle, **kwargs
            )
        if shuffle and not is_dataset(x) and not kwargs.get("validation_split"):
            x = shuffled_batches(x, y, sample_weight, batch_size)
            y = sample_weight = batch_size = None
        return super().fit(x, y, batch_size=batch_size, sample_weight=sample_weight, shuffle=False, **kwargs)

    def evaluate(self, x=None, y=None, **kwargs):
        self.check_global_tokens_of(x)
        if self._takes_features(x) and not kwargs.get("_use_cached_eval_dataset"):
            return keras.Model.evaluate(self, x, y, **kwargs)
        return super().evaluate(x, y, **kwargs)

    def predict(self, x=None, **kwargs):
        self.check_global_tokens_of(x)
        if self._takes_features(x):
            return keras.Model.predict(self, x, **kwargs)
        return super().predict(x, **kwargs)
