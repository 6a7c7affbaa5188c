from keras import ops


def embedding_table(embedding):
    """The `[rows, dim]` float table of a `keras.layers.Embedding`.

    The layer's own variable when it holds floats. After `quantize("int8")`
    (or "int4") the variable holds integers and a per-row scale, which only
    the layer's call applies, so the rows are looked up through the call:
    reading the integers as floats would give embeddings scaled up by
    about 127 / max|row| (the tied logits and positions of a quantized
    model were wrong by more than their own size before this).
    """
    if embedding.quantization_mode is None:
        table = embedding.embeddings
        # The value, not the variable: JAX refuses to abstractify a Keras
        # variable inside `slice`.
        return getattr(table, "value", table)
    return embedding(ops.arange(embedding.input_dim, dtype="int32"))
