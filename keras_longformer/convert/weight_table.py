"""The weight table: `(Keras variable, Hugging Face key, transform)` rows.

One list per model, walked by `from_huggingface`, which checks every key
and shape. Transforms turn torch's layouts (`Linear.weight` is
`[out, in]`, heads flat) into Keras's (`Dense.kernel` `[in, out]`,
`EinsumDense` kernels with a heads axis).
"""

TASKS_WITH_HEADS = ("masked_lm", "classifier", "token_classifier", "question_answering")
POOLER_KEYS = ("pooler.dense.weight", "pooler.dense.bias")


def _identity(array, variable):
    return array


def _transpose(array, variable):
    """torch `Linear.weight` `[out, in]` -> Keras `Dense.kernel` `[in, out]`."""
    return array.T


def _reshape(array, variable):
    """Flat heads `[N * H]` / `[D, N * H]` -> the EinsumDense shape."""
    return array.reshape(tuple(variable.shape))


def _transpose_reshape(array, variable):
    """`[N * H, D]` -> `[D, N, H]`, or `[D, N * H]` -> `[N, H, D]`."""
    return array.T.reshape(tuple(variable.shape))


def _backbone_table(backbone, prefix, global_from_local=False, position_transform=_identity):
    """Rows of the backbone; with `global_from_local`, the global projections
    read the local ones' keys (a short model has no global projections: the
    paper's recipe starts them as copies), and `position_transform` maps
    the checkpoint's position table to the Keras one."""
    table = []

    def add(variable, key, transform=_identity):
        table.append((variable, prefix + key, transform))

    embeddings = backbone.embeddings
    add(embeddings.token_embedding.embeddings, "embeddings.word_embeddings.weight")
    add(
        embeddings.position_embedding.embeddings,
        "embeddings.position_embeddings.weight",
        position_transform,
    )
    add(embeddings.token_type_embedding.embeddings, "embeddings.token_type_embeddings.weight")
    add(embeddings.layer_norm.gamma, "embeddings.LayerNorm.weight")
    add(embeddings.layer_norm.beta, "embeddings.LayerNorm.bias")
    for i, layer in enumerate(backbone.encoder_layers):
        attention = layer.self_attention
        hf = f"encoder.layer.{i}."
        for dense, name in (
            (attention._query_dense, "query"),
            (attention._key_dense, "key"),
            (attention._value_dense, "value"),
            (attention._global_query_dense, "query" if global_from_local else "query_global"),
            (attention._global_key_dense, "key" if global_from_local else "key_global"),
            (attention._global_value_dense, "value" if global_from_local else "value_global"),
        ):
            add(dense.kernel, f"{hf}attention.self.{name}.weight", _transpose_reshape)
            add(dense.bias, f"{hf}attention.self.{name}.bias", _reshape)
        add(attention._output_dense.kernel, f"{hf}attention.output.dense.weight", _transpose_reshape)
        add(attention._output_dense.bias, f"{hf}attention.output.dense.bias")
        add(layer.attention_layer_norm.gamma, f"{hf}attention.output.LayerNorm.weight")
        add(layer.attention_layer_norm.beta, f"{hf}attention.output.LayerNorm.bias")
        add(layer.intermediate_dense.kernel, f"{hf}intermediate.dense.weight", _transpose)
        add(layer.intermediate_dense.bias, f"{hf}intermediate.dense.bias")
        add(layer.output_dense.kernel, f"{hf}output.dense.weight", _transpose)
        add(layer.output_dense.bias, f"{hf}output.dense.bias")
        add(layer.output_layer_norm.gamma, f"{hf}output.LayerNorm.weight")
        add(layer.output_layer_norm.beta, f"{hf}output.LayerNorm.bias")
    return table


def weight_table(model, task="backbone", prefix="", global_from_local=False, position_transform=_identity):
    """The `(Keras variable, HF key, transform)` rows of a model.

    Args:
        model: a `LongformerBackbone`, or the task model of `task`.
        task: one of "backbone", "masked_lm", "classifier",
            "token_classifier", "question_answering".
        prefix: prefix of the backbone's keys in the checkpoint
            ("longformer." for the `LongformerFor*` classes, "roberta."
            for RoBERTa's).
        global_from_local: bool, the global projections read the local
            query/key/value keys (a RoBERTa-family checkpoint).
        position_transform: `transform` of the position table's row.

    Returns:
        list of `(variable, key, transform)`; `transform(array, variable)`
        returns the array to assign.
    """
    if task != "backbone" and task not in TASKS_WITH_HEADS:
        raise ValueError(
            f"`task` must be \"backbone\" or one of {TASKS_WITH_HEADS}. Received: task={task!r}"
        )
    tables = dict(global_from_local=global_from_local, position_transform=position_transform)
    if task == "backbone":
        table = _backbone_table(model, prefix, **tables)
        pooler = model.pooler_dense
        table.append((pooler.kernel, prefix + POOLER_KEYS[0], _transpose))
        table.append((pooler.bias, prefix + POOLER_KEYS[1], _identity))
        return table
    table = _backbone_table(model.backbone, prefix, **tables)
    if task == "masked_lm":
        head = model.lm_head
        table += [
            (head.dense.kernel, "lm_head.dense.weight", _transpose),
            (head.dense.bias, "lm_head.dense.bias", _identity),
            (head.layer_norm.gamma, "lm_head.layer_norm.weight", _identity),
            (head.layer_norm.beta, "lm_head.layer_norm.bias", _identity),
            (head.bias, "lm_head.bias", _identity),
        ]
    elif task == "classifier":
        # RoBERTa's classification head is dense + tanh on the first token,
        # the network of the pooler: `classifier.dense` is the pooler here.
        pooler = model.backbone.pooler_dense
        table += [
            (pooler.kernel, "classifier.dense.weight", _transpose),
            (pooler.bias, "classifier.dense.bias", _identity),
            (model.output_dense.kernel, "classifier.out_proj.weight", _transpose),
            (model.output_dense.bias, "classifier.out_proj.bias", _identity),
        ]
    elif task == "token_classifier":
        table += [
            (model.output_dense.kernel, "classifier.weight", _transpose),
            (model.output_dense.bias, "classifier.bias", _identity),
        ]
    else:  # question_answering
        table += [
            (model.output_dense.kernel, "qa_outputs.weight", _transpose),
            (model.output_dense.bias, "qa_outputs.bias", _identity),
        ]
    return table
