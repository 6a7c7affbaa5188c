"""ONNX export of keras_longformer models (installed as `keras_longformer.export`)."""
