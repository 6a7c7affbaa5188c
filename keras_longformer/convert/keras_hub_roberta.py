"""keras-hub's `RobertaBackbone` / `RobertaMaskedLM` -> Longformer weights.

One table, as for Hugging Face: `(Longformer variable, source array)`
rows, built from a keras-hub RoBERTa instance and walked by
`convert_to_long`, which checks every shape before assigning.

keras-hub's RoBERTa reads position `p` (from 0) at row `p` of a table with
no reserved rows, has no token types and no pooler; the Longformer table
keeps RoBERTa's `pad_token_id + 1` reserved rows (zeros here: no real
token reads them), and its token type row is zero.
"""

import keras
import numpy as np

# keras-hub's RoBERTa: `<pad>` is id 1, LayerNorm epsilon 1e-5.
PAD_TOKEN_ID = 1
LAYER_NORM_EPSILON = 1e-5


def _numpy(variable):
    return keras.ops.convert_to_numpy(variable)


def keras_hub_classes():
    """`(RobertaBackbone, RobertaMaskedLM)` of the installed keras-hub."""
    import keras_hub

    return keras_hub.models.RobertaBackbone, keras_hub.models.RobertaMaskedLM


def source_backbone(source):
    """The `RobertaBackbone` of a keras-hub RoBERTa backbone or masked LM."""
    return getattr(source, "backbone", source)


def backbone_config_from_keras_hub(source):
    """`LongformerBackbone` arguments of a keras-hub RoBERTa (window aside).

    Returns:
        `(kwargs, short_length)`: the arguments, and the source's number of
        positions.
    """
    backbone = source_backbone(source)
    if any(layer.quantization_mode for layer in backbone._flatten_layers()):
        raise ValueError(
            "The keras-hub RoBERTa source is quantized; convert the float model "
            "and quantize the long one (`model.quantize('int8')`)."
        )
    kwargs = dict(
        vocabulary_size=backbone.vocabulary_size,
        num_layers=backbone.num_layers,
        num_heads=backbone.num_heads,
        hidden_dim=backbone.hidden_dim,
        intermediate_dim=backbone.intermediate_dim,
        type_vocab_size=1,
        pad_token_id=PAD_TOKEN_ID,
        dropout=float(backbone.dropout),
        attention_dropout=float(backbone.dropout),
        layer_norm_epsilon=LAYER_NORM_EPSILON,
    )
    return kwargs, backbone.max_sequence_length


def keras_hub_table(source, model, position_rows):
    """`(variable, array)` rows: every Longformer weight the source gives.

    Args:
        source: a keras-hub `RobertaBackbone` or `RobertaMaskedLM`.
        model: the `LongformerBackbone` (or `LongformerMaskedLM`) to fill.
        position_rows: function `(rows, variable) -> table` tiling the
            source's position rows (reserved rows first) to the long table.
    """
    from keras_longformer.models import LongformerBackbone

    src = source_backbone(source)
    backbone = model if isinstance(model, LongformerBackbone) else model.backbone
    embeddings = backbone.embeddings
    reserved = backbone.pad_token_id + 1
    positions = _numpy(src.embeddings.position_embedding.position_embeddings)
    positions = np.concatenate([np.zeros((reserved, positions.shape[1]), positions.dtype), positions])
    table = [
        (embeddings.token_embedding.embeddings, _numpy(src.token_embedding.embeddings)),
        (
            embeddings.position_embedding.embeddings,
            position_rows(positions, embeddings.position_embedding.embeddings),
        ),
        (embeddings.token_type_embedding.embeddings, np.zeros(embeddings.token_type_embedding.embeddings.shape)),
        (embeddings.layer_norm.gamma, _numpy(src.embeddings_layer_norm.gamma)),
        (embeddings.layer_norm.beta, _numpy(src.embeddings_layer_norm.beta)),
    ]
    for layer, source_layer in zip(backbone.encoder_layers, src.transformer_layers):
        attention = layer.self_attention
        source_attention = source_layer._self_attention_layer
        pairs = [
            (attention._query_dense, source_attention._query_dense),
            (attention._key_dense, source_attention._key_dense),
            (attention._value_dense, source_attention._value_dense),
            # The paper's recipe: global projections start as the local ones.
            (attention._global_query_dense, source_attention._query_dense),
            (attention._global_key_dense, source_attention._key_dense),
            (attention._global_value_dense, source_attention._value_dense),
            (attention._output_dense, source_attention._output_dense),
            (layer.intermediate_dense, source_layer._feedforward_intermediate_dense),
            (layer.output_dense, source_layer._feedforward_output_dense),
        ]
        for ours, theirs in pairs:
            table.append((ours.kernel, _numpy(theirs.kernel)))
            table.append((ours.bias, _numpy(theirs.bias)))
        for ours, theirs in (
            (layer.attention_layer_norm, source_layer._self_attention_layer_norm),
            (layer.output_layer_norm, source_layer._feedforward_layer_norm),
        ):
            table.append((ours.gamma, _numpy(theirs.gamma)))
            table.append((ours.beta, _numpy(theirs.beta)))
    if source is not src:  # a masked LM: its head too
        head, source_head = model.lm_head, source.masked_lm_head
        table += [
            (head.dense.kernel, _numpy(source_head._intermediate_dense.kernel)),
            (head.dense.bias, _numpy(source_head._intermediate_dense.bias)),
            (head.layer_norm.gamma, _numpy(source_head._intermediate_layer_norm.gamma)),
            (head.layer_norm.beta, _numpy(source_head._intermediate_layer_norm.beta)),
            (head.bias, _numpy(source_head._bias)),
        ]
    return table


def keras_hub_tokenizer(source):
    """A `LongformerTokenizer` with the source preprocessor's vocabulary, or None."""
    from keras_longformer.models import LongformerTokenizer

    preprocessor = getattr(source, "preprocessor", None)
    tokenizer = getattr(preprocessor, "tokenizer", None)
    if tokenizer is None:
        return None
    return LongformerTokenizer(vocabulary=tokenizer.vocabulary, merges=tokenizer.merges)
