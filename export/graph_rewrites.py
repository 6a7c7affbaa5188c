"""Exact rewrites of tf2onnx's graph that leave every weight in one place, as a plain MatMul or Gather.

tf2onnx lowers a Keras `EinsumDense` (every attention projection) to a
`Gemm` on a transposed copy of the weight, and keeps a second folded copy
of it alive only to feed a `Shape` node. That doubles the file, and
onnxruntime's dynamic quantization skips `Gemm` (it quantizes `MatMul` and
`Gather` whose weight is an initializer). The rewrites here:
- nodes that read only initializers (the `Shape` of a weight copy, a
  `Reshape` of a weight) -> initializers, computed by `onnx.reference`;
- `Gemm` with a constant `B` -> `MatMul` (+ `Add` for its `C`);
- the position table's read through `Slice` (the embeddings' length guard)
  -> a `Gather` of the table itself, the slice's shape computed from its
  bounds;
- initializers nothing reads any more are dropped.
Each is exact (the same products and sums); the sweep checks the result.
"""

import copy

import numpy as np

# The name scope LongformerEmbeddings gives the slice of its position table.
POSITION_GUARD_SCOPE = "sequence_longer_than_max_sequence_length"


class _Graph:
    """Initializers by name, producers and consumers of an `onnx.GraphProto`."""

    def __init__(self, model_proto):
        self.model = model_proto
        self.graph = model_proto.graph
        self.initializers = {tensor.name: tensor for tensor in self.graph.initializer}
        self._counter = 0
        self.refresh()

    def refresh(self):
        """Re-reads the consumers of every tensor: name -> [node index]."""
        self.consumers = {}
        for index, node in enumerate(self.graph.node):
            for name in node.input:
                self.consumers.setdefault(name, []).append(index)

    def add_initializer(self, name, value):
        from onnx import numpy_helper

        tensor = numpy_helper.from_array(value, name)
        self.graph.initializer.append(tensor)
        self.initializers[name] = tensor

    def array(self, name):
        from onnx import numpy_helper

        return numpy_helper.to_array(self.initializers[name])

    def constant(self, value, hint):
        """A new initializer holding `value`; returns its name."""
        from onnx import numpy_helper

        self._counter += 1
        name = f"{hint}__rewritten_{self._counter}"
        tensor = numpy_helper.from_array(np.asarray(value), name)
        self.graph.initializer.append(tensor)
        self.initializers[name] = tensor
        return name

    def attributes(self, node):
        import onnx

        return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def rewrite(model_proto):
    """Applies every rewrite to `model_proto` in place; returns counts by kind."""
    graph = _Graph(model_proto)
    counts = {
        "position_slice": _position_slices_to_gathers(graph),
        "folded": _fold_constants(graph),
        "gemm": _gemms_to_matmuls(graph),
    }
    counts["dropped_initializers"] = drop_unused_initializers(model_proto)
    return counts


def _replace_nodes(graph, new_by_index):
    """Puts the replacements of node `i` (`new_by_index[i]`, a list, empty to
    remove it) where it stood, keeping the graph in topological order."""
    if not new_by_index:
        return
    nodes = [copy.deepcopy(node) for node in graph.graph.node]
    del graph.graph.node[:]
    for index, node in enumerate(nodes):
        graph.graph.node.extend(new_by_index.get(index, [node]))
    graph.refresh()


# Ops never folded: random ones, and those whose output may dwarf their inputs.
_NOT_FOLDED = ("ConstantOfShape", "Expand", "Tile", "Range", "Bernoulli", "Multinomial")
# A folded output may be this many elements larger than its inputs.
_FOLD_GROWTH = 4096


def _fold_constants(graph):
    """Nodes that read only initializers become initializers, computed by
    ONNX's own reference implementation (`onnx.reference`): the Shape of a
    weight copy, a Reshape or Transpose of a weight, a shape built by a
    Concat of constants. Runs once, in topological order, so chains fold."""
    import onnx
    from onnx.reference import ReferenceEvaluator

    opset = {entry.domain or "": entry.version for entry in graph.model.opset_import}[""]
    outputs = {value.name for value in graph.graph.output}
    folded = {}
    for index, node in enumerate(graph.graph.node):
        names = [name for name in node.input if name]
        if (
            node.domain not in ("", "ai.onnx")
            or node.op_type in _NOT_FOLDED
            or node.op_type.startswith("Random")
            or not names
            or any(name not in graph.initializers for name in names)
            or any(name in outputs for name in node.output)
            or any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)
        ):
            continue
        feeds = {name: graph.array(name) for name in names}
        try:
            values = ReferenceEvaluator(node, opsets={"": opset}).run(None, feeds)
        except Exception:  # an op the reference cannot run on these: leave it
            continue
        size = sum(np.asarray(value).size for value in values)
        if size > sum(value.size for value in feeds.values()) + _FOLD_GROWTH:
            continue
        for name, value in zip(node.output, values):
            graph.add_initializer(name, np.asarray(value))
        folded[index] = []
    _replace_nodes(graph, folded)
    return len(folded)


def _gemms_to_matmuls(graph):
    import onnx

    replaced = {}
    for index, node in enumerate(graph.graph.node):
        if node.op_type != "Gemm" or node.input[1] not in graph.initializers:
            continue
        attributes = graph.attributes(node)
        if attributes.get("transA", 0):
            continue
        weight = graph.array(node.input[1]) * np.float32(attributes.get("alpha", 1.0))
        weight = weight.astype(graph.array(node.input[1]).dtype)
        if attributes.get("transB", 0):
            weight = np.ascontiguousarray(weight.T)
        weight_name = graph.constant(weight, node.input[1].replace(":", "_"))
        has_bias = len(node.input) > 2 and node.input[2] and attributes.get("beta", 1.0) != 0
        product = node.output[0] + "__matmul" if has_bias else node.output[0]
        nodes = [onnx.helper.make_node("MatMul", [node.input[0], weight_name], [product], name=node.name)]
        if has_bias:
            bias = node.input[2]
            if attributes.get("beta", 1.0) != 1.0:
                if bias not in graph.initializers:
                    continue  # a scaled run-time bias: leave the Gemm alone
                value = graph.array(bias)
                bias = graph.constant(
                    (value * np.float32(attributes["beta"])).astype(value.dtype), bias.replace(":", "_")
                )
            nodes.append(
                onnx.helper.make_node("Add", [product, bias], [node.output[0]], name=node.name + "__bias")
            )
        replaced[index] = nodes
    _replace_nodes(graph, replaced)
    return len(replaced)


def _position_slices_to_gathers(graph):
    """`Gather(Slice(table, 0, ends))` -> `Gather(table)`, for the slice the
    embeddings layer makes only so that TensorFlow fails past the maximum
    length. Its row ids never exceed the slice (`length + pad`), so reading
    the table itself is the same, and a length past the maximum still
    fails in the Gather; the slice's `Shape`, which tf2onnx reads to wrap
    negative ids, is computed from `ends` as ONNX's Slice would."""
    import onnx

    replaced = {}
    nodes = list(graph.graph.node)
    for index, node in enumerate(nodes):
        if node.op_type != "Slice" or POSITION_GUARD_SCOPE not in node.name:
            continue
        table, starts = node.input[0], node.input[1]
        if table not in graph.initializers or len(node.input) > 3:
            continue  # with axes or steps: not the guard's plain slice
        if starts not in graph.initializers or np.any(graph.array(starts) != 0):
            continue
        consumers = [(i, nodes[i]) for i in graph.consumers.get(node.output[0], [])]
        gathers = [c for _, c in consumers if c.op_type == "Gather" and c.input[0] == node.output[0]]
        shapes = [(i, c) for i, c in consumers if c.op_type == "Shape" and not c.attribute]
        if not gathers or len(gathers) + len(shapes) != len(consumers):
            continue
        if any(graph.attributes(g).get("axis", 0) != 0 for g in gathers):
            continue
        for gather in gathers:
            gather.input[0] = table
        sliced_axes = int(graph.array(starts).size)
        for shape_index, shape in shapes:
            replaced[shape_index] = _slice_shape_nodes(graph, node, sliced_axes, shape, onnx)
        replaced[index] = []  # nothing reads the slice any more
    _replace_nodes(graph, replaced)
    return sum(1 for nodes in replaced.values() if not nodes)


def _slice_shape_nodes(graph, slice_node, sliced_axes, shape_node, onnx):
    """Nodes computing the shape of `Slice(table, 0, ends)` over its first
    `sliced_axes` axes: each such dim is `ends` (plus the dim when
    negative) clipped to [0, dim]; the other dims are the table's."""
    dims = list(graph.initializers[slice_node.input[0]].dims)
    prefix = shape_node.name + "__from_ends"
    sliced = graph.constant(np.array(dims[:sliced_axes], np.int64), prefix)
    zero = graph.constant(np.array(0, np.int64), prefix)
    rest = dims[sliced_axes:]
    out = shape_node.output[0]
    step = {key: f"{prefix}/{key}" for key in ("ends", "negative", "wrapped", "adjusted", "low", "size")}
    make = onnx.helper.make_node
    nodes = [
        make("Cast", [slice_node.input[2]], [step["ends"]], to=onnx.TensorProto.INT64),
        make("Less", [step["ends"], zero], [step["negative"]]),
        make("Add", [step["ends"], sliced], [step["wrapped"]]),
        make("Where", [step["negative"], step["wrapped"], step["ends"]], [step["adjusted"]]),
        make("Max", [step["adjusted"], zero], [step["low"]]),
        make("Min", [step["low"], sliced], [step["size"] if rest else out]),
    ]
    if rest:
        tail = graph.constant(np.array(rest, np.int64), prefix)
        nodes.append(make("Concat", [step["size"], tail], [out], axis=0))
    for index, node in enumerate(nodes):
        node.name = f"{prefix}/{index}"
    return nodes


def drop_unused_initializers(model_proto):
    """Removes initializers no node or graph output reads; returns how many."""
    used = {name for node in model_proto.graph.node for name in node.input}
    used |= {output.name for output in model_proto.graph.output}
    keep = [tensor for tensor in model_proto.graph.initializer if tensor.name in used]
    dropped = len(model_proto.graph.initializer) - len(keep)
    if dropped:
        del model_proto.graph.initializer[:]
        model_proto.graph.initializer.extend(keep)
    return dropped


def initializer_bytes(model_proto):
    """Bytes of the file's initializers (its weights)."""
    from onnx import numpy_helper

    return sum(numpy_helper.to_array(tensor).nbytes for tensor in model_proto.graph.initializer)
