"""Keras-graph plumbing and caches (private): the only module that touches Keras internals.

- ``memo(owner, key, build)``: the one cache. Whatever the package builds for a model (a compiled
  step, a clone, a functional twin) is kept per model and dies with it.
- ``graph_model(model)``: the model as a graph of layer calls; a subclassed model that has been
  called gets a functional twin (its ``call`` traced on a symbolic input, same layers).
- Layers by name: ``walk``, ``layer_names``, ``find_layer``, ``path_name``, ``output_layer``; a
  layer of a nested model is "outer/inner".
- ``tap(model, layers)``: the function x -> [y_(l) for each l]. It replays the model's graph layer
  call by layer call, entering nested models, so an inner layer of a transfer-learning base and
  the head come from one pass; ``forward(model, layers)`` is it compiled, for batches of any size.
- ``check_images``: images for the model (integer pixels accepted when the model scales them).
- ``calls(model)``: the model's graph as a list of layer calls, for walks such as the receptive
  field's; ``program(model)``: the same calls, nested models entered, each runnable on any values.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from . import _checks

_MEMO: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

MEMORY_PER_CALL = 2**30      # bytes of layer outputs one compiled call may hold (batch_size "auto")
MAX_BATCH = 1024
FREE_SIZE_BATCH = 32         # "auto" for a model whose layer sizes are unknown before it runs


def memo(owner, key, build):
    """``build()`` once per (owner, key), kept while ``owner`` (a model) lives.

    What ``build`` returns must not hold ``owner`` itself (only its layers, sub-models or weights),
    or the entry would keep the model alive.
    """
    cache = _MEMO.setdefault(owner, {})
    if key not in cache:
        cache[key] = build()
    return cache[key]


def as_list(outputs) -> list:
    """A model's outputs as a list (Keras returns a bare tensor for a single output)."""
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


# --------------------------------------------------------------------------- the model's graph


def _graph_of(model):
    """The functional graph of a model (a Sequential model keeps one inside)."""
    return getattr(model, "_functional", None) or model


def _has_graph(model) -> bool:
    """Whether ``model`` is functional or a built Sequential model: a graph of layer calls."""
    return hasattr(_graph_of(model), "_nodes_by_depth")


def _first_call_shape(model) -> tuple:
    """The input shape (batch axis included) a subclassed model was first called with."""
    shapes = getattr(model, "_build_shapes_dict", None) or {}
    if len(shapes) != 1:
        raise TypeError(
            f"model {getattr(model, 'name', model)!r} has no defined input: call it once on a "
            "batch of images (model(x[:1])) so its input shape is known, or start a Sequential "
            "model with keras.Input, e.g. keras.Sequential([keras.Input(shape=(28, 28, 1)), ...])")
    shape = next(iter(shapes.values()))
    if not isinstance(shape, (tuple, list)) or len(shape) < 2:
        raise TypeError(f"model {model.name!r} was called with {shapes}; cnn_helper explains "
                        "models with a single image input")
    return tuple(shape)


def _functional_twin(model):
    """A functional model that calls the layers of the subclassed ``model`` as its ``call`` does.

    ``model.call`` is run once on a symbolic ``keras.Input``, so every layer it calls becomes a
    node of a graph; the twin shares the model's layers and weights.
    """
    import keras

    inputs = keras.Input(_first_call_shape(model)[1:], name=f"{model.name}_input")
    try:
        outputs = model.call(inputs)
    except Exception as e:
        raise TypeError(
            f"model {model.name!r} is a subclassed {type(model).__name__} whose call() cannot be "
            f"traced on a symbolic keras.Input ({type(e).__name__}: {str(e).splitlines()[0]}). "
            "cnn_helper reads a model's layers from its graph: write call() with Keras layers "
            "and keras.ops only, or build the model as a functional or Sequential model") from e
    return keras.Model(inputs, outputs, name=f"{model.name}_functional")


def graph_model(model):
    """``model`` as a graph of layer calls: itself when it is functional or Sequential, and for a
    subclassed model that has been called, its functional twin (same layers, same weights)."""
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
    _check_channels_last(model)
    if _has_graph(model):
        return model
    return memo(model, ("functional twin",), lambda: _functional_twin(model))


def _check_channels_last(model):
    """A ValueError for a model with channels_first layers: every method reads images and feature
    maps as (H, W, C), so their channels and locations would be silently wrong."""
    found = memo(model, ("channels_first layers",), lambda: tuple(
        name for name, path in walk(model)
        if getattr(path[-1], "data_format", None) == "channels_first"))
    if found:
        raise ValueError(
            f"model {model.name!r} has channels_first layers {list(found)}; cnn_helper reads "
            "images and feature maps as (H, W, C). Rebuild the model with "
            "data_format='channels_last' (the Keras default) and copy its weights: convolution "
            "kernels have the same layout in both formats (a Dense layer after Flatten needs its "
            "rows reordered)")


def model_input(model):
    """The model's one input tensor, or a TypeError/ValueError saying how to give it one."""
    inputs = graph_model(model).inputs
    if len(inputs) != 1:
        raise ValueError(f"model {model.name!r} has {len(inputs)} inputs; cnn_helper explains "
                         "models with a single image input")
    return inputs[0]


def input_shape(model) -> tuple:
    """The shape of one input image (no batch axis); None for a free size."""
    return tuple(model_input(model).shape[1:])


def input_spec(model, dtype=None):
    """A ``tf.TensorSpec`` for a batch of the model's inputs, in ``dtype`` (default: its own)."""
    import tensorflow as tf

    tensor = model_input(model)
    return tf.TensorSpec((None,) + tuple(tensor.shape[1:]), tf.as_dtype(dtype or tensor.dtype))


def takes_integer_images(model) -> bool:
    """Whether ``model`` takes integer pixels as they are: its Input has an integer dtype, or the
    first layer that computes on its input (nested models entered; resizing and augmentation
    layers passed) is a Rescaling layer that shrinks (1/255, 1/127.5) or a Normalization layer
    whose means are pixel values (above 1), as in EfficientNet and ConvNeXt. Dividing such
    images by 255 first would scale them twice."""
    import keras

    def rescales(layer) -> bool:
        if isinstance(layer, keras.layers.Rescaling):
            return bool(np.all(np.abs(np.asarray(layer.scale, dtype=float)) < 1))
        mean = getattr(layer, "mean", None)                      # None: not adapted yet
        return mean is not None and float(np.max(np.asarray(mean))) > 1

    def front_scales() -> bool:
        if not model_input(model).dtype.startswith(("float", "bfloat")):
            return True
        for _, path in walk(graph_model(model)):
            layer = path[-1]
            if isinstance(layer, (keras.layers.InputLayer, keras.Model)):
                continue
            if isinstance(layer, (keras.layers.Rescaling, keras.layers.Normalization)):
                return rescales(layer)
            if not type(layer).__module__.startswith("keras.src.layers.preprocessing"):
                return False
        return False

    return memo(model, ("takes integer images",), front_scales)


def check_images(model, x, name: str = "x"):
    """Images checked against the model's input: (float32 batch, was_single_image). Integer
    images are cast to float32, unscaled, for a model that takes them (``takes_integer_images``);
    for another, the error says whether to divide by 255."""
    return _checks.images_for(x, input_shape(model), model.name, name,
                              integers_ok=takes_integer_images(model))


# --------------------------------------------------------------------------- layers by name


def walk(model, prefix=""):
    """Yield (path name, [layers from the model down to it]) for every layer, nested models too."""
    import keras

    for layer in model.layers:
        name = prefix + layer.name
        yield name, [layer]
        if isinstance(layer, keras.Model):
            for inner_name, inner_path in walk(layer, name + "/"):
                yield inner_name, [layer] + inner_path


def layer_names(model) -> list:
    """Names of every layer; layers of nested models as "outer/inner"."""
    return [name for name, _ in walk(model)]


def find_layer(model, layer) -> list:
    """A layer (name, "outer/inner" path, or the layer object) as its path of layers.

    A bare name of a layer inside a nested model is accepted when it is unique.
    """
    import keras

    walked = list(walk(model))
    names = [name for name, _ in walked]
    if isinstance(layer, keras.layers.Layer):
        hits = [path for _, path in walked if path[-1] is layer]
        if not hits:
            raise ValueError(f"layer {layer.name!r} is not part of model {model.name!r}; "
                             f"its layers are {names}")
        return hits[0]
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a layer name or a keras layer, got {layer!r}")
    exact = [path for name, path in walked if name == layer]
    if exact:
        return exact[0]
    by_leaf = [path for name, path in walked if path[-1].name == layer]
    if len(by_leaf) == 1:
        return by_leaf[0]
    if by_leaf:
        raise ValueError(f"layer name {layer!r} is ambiguous in model {model.name!r}; use one of "
                         f"{[n for n in names if n.split('/')[-1] == layer]}")
    raise ValueError(f"model {model.name!r} has no layer {layer!r}; its layers are {names}")


def path_name(model, layer) -> str:
    """The "outer/inner" name of a layer: it names the same layer in a clone of the model."""
    return "/".join(part.name for part in find_layer(model, layer))


def output_layer(model):
    """The layer that produces the model's (single) output: the head y_(L)."""
    outputs = graph_model(model).outputs
    if len(outputs) != 1:
        raise ValueError(f"model {model.name!r} has {len(outputs)} outputs; give a Feature "
                         "naming the layer to explain instead of a class index")
    return outputs[0]._keras_history[0]


def _program(model) -> tuple:
    """``model``'s graph as (input tensors, [(node, the program of the nested model it calls, or
    None)], output tensors), nodes in an order where each input is computed before it is read.
    It holds the model's layers and nodes, not the model."""
    graph = _graph_of(model)
    steps = [(node, _program(node.operation) if _has_graph(node.operation) else None)
             for depth in sorted(graph._nodes_by_depth, reverse=True)
             for node in graph._nodes_by_depth[depth] if not node.is_input]
    return tuple(graph.inputs), steps, tuple(graph.outputs)


def _replay(program, inputs: list, prefix: str, found: dict, wanted=None):
    """Run a model's ``program`` on ``inputs`` one layer call at a time, entering nested models.

    A nested functional or Sequential model is not called as one block: its own layers are called
    in its place, so the output of any inner layer lies on the path from the input to the head
    (one graph, each layer run once). ``found`` receives the (first) output of every call by its
    "outer/inner" path name. Returns the model's outputs, or None once every name in ``wanted``
    has been found (the rest of the graph is not run).
    """
    from keras import tree

    sources, steps, results = program
    tensors = {id(t): x for t, x in zip(sources, inputs)}
    for t, x in zip(sources, inputs):                      # what the input layers hold
        found.setdefault(prefix + t._keras_history.operation.name, x)
    for node, inner in steps:
        args, kwargs = node.arguments.fill_in(tensors)
        layer = node.operation
        if inner is None:
            outputs = tree.flatten(layer(*args, **kwargs))
        else:
            outputs = _replay(inner, tree.flatten(args), prefix + layer.name + "/", found, wanted)
            if outputs is None:
                return None
        found.setdefault(prefix + layer.name, outputs[0] if len(outputs) == 1 else outputs)
        if wanted is not None and wanted <= found.keys():
            return None
        tensors.update({id(t): x for t, x in zip(node.outputs, outputs)})
    return [tensors[id(t)] for t in results]


def _program_of(model) -> tuple:
    """The program of ``model`` (or of its functional twin), built once."""
    return memo(model, ("program",), lambda: _program(graph_model(model)))


def _call_shapes(model, prefix: str = "") -> dict:
    """{path name: output shape (no batch axis)} of every layer call in ``model``'s graph, nested
    graphs entered, as the graphs recorded them when they were built."""
    shapes = {}
    for call in calls(model)[0]:
        shapes.setdefault(prefix + call.layer.name, call.shape)
        if _has_graph(call.layer):
            shapes.update(_call_shapes(call.layer, prefix + call.layer.name + "/"))
    return shapes


def _path_names(model, layers) -> list:
    """The "outer/inner" names of ``layers``, each checked to be called in ``model``'s graph."""
    names = ["/".join(layer.name for layer in find_layer(model, one))
             for one in _checks.layer_list(layers)]
    called = memo(model, ("call shapes",), lambda: _call_shapes(model))
    for name in names:
        if name not in called:
            parent = find_layer(model, name)[-2] if "/" in name else None
            why = (f"; {parent.name!r} is a subclassed model, whose inner calls are not known"
                   if parent is not None and not _has_graph(parent) else "")
            raise ValueError(
                f"layer {name!r} is not called in the graph of model {model.name!r}{why}")
    return names


def _traced_shapes(model) -> dict:
    """{path name: output shape} found by tracing the model on its input's shape: exact where a
    nested model of free input size recorded None."""
    import tensorflow as tf

    shapes = {}

    def run(x):
        found = {}
        _replay(_program_of(model), [x], "", found)
        shapes.update({name: tuple(as_list(y)[0].shape[1:]) for name, y in found.items()})
        return x

    tf.function(run, autograph=False).get_concrete_function(input_spec(model))
    return shapes


def output_shape(model, layer) -> tuple:
    """Shape (without batch axis) of the output of ``layer`` on the model's input."""
    name, = _path_names(model, [layer])
    shape = memo(model, ("call shapes",), lambda: _call_shapes(model))[name]
    if None in shape and None not in input_shape(model):
        shape = memo(model, ("traced shapes",), lambda: _traced_shapes(model))[name]
    return shape


# --------------------------------------------------------------------------- batch size


def _values_per_image(model):
    """How many numbers all the layer outputs of ``model`` hold for one image (None: unknown)."""
    import keras

    total = 0
    for call in calls(model)[0]:
        inner = _values_per_image(call.layer) if isinstance(call.layer, keras.Model) else 0
        if inner is None or None in call.shape:
            return None
        total += inner + int(np.prod(call.shape))
    return total


def batch_size(model, value) -> int:
    """``value`` (checked), or for "auto" the images per call whose layer outputs fit in
    ``MEMORY_PER_CALL`` bytes (float32), between 1 and ``MAX_BATCH``: back propagation keeps about
    that much per image, so this bounds the memory of every method. ``FREE_SIZE_BATCH`` when the
    sizes are unknown (a free input size, a subclassed model)."""
    value = _checks.batch_size(value)
    if value != "auto":
        return value

    def choose():
        try:
            per_image = _values_per_image(model)
        except TypeError:                       # a subclassed model: no graph to read
            per_image = None
        if per_image is None:
            return FREE_SIZE_BATCH
        return int(min(MAX_BATCH, max(1, MEMORY_PER_CALL // (4 * per_image))))

    return memo(model, ("auto batch size",), choose)


# --------------------------------------------------------------------------- the forward pass


def tap(model, layers):
    """The function x -> [y_(l) for each of ``layers``] (a list, always), in inference mode.

    It runs the model's own layers (sharing its weights) up to the last layer asked for; ``x`` is
    cast to the model's input dtype first, as the model does.
    """
    from keras import ops

    names = _path_names(model, layers)
    program, dtype = _program_of(model), model_input(model).dtype

    def outputs(x):
        found = {}
        _replay(program, [ops.cast(x, dtype)], "", found, frozenset(names))
        return [found[name] for name in names]

    return outputs


def forward(model, layers):
    """``tap`` compiled: one ``tf.function`` per (model, layers) for float32 batches of any size."""
    import tensorflow as tf

    key = ("forward",) + tuple(_path_names(model, layers))
    return memo(model, key, lambda: tf.function(tap(model, layers),
                                                input_signature=[input_spec(model, "float32")]))


def run_batched(fn, batch_size: int, *arrays) -> list:
    """``fn`` over chunks of ``batch_size`` examples of ``arrays`` (sliced alike); its outputs (a
    list of arrays per chunk) concatenated. An empty data set still gives outputs of length 0."""
    slices = list(_checks.batches(len(arrays[0]), batch_size)) or [slice(0, 0)]
    chunks = [[np.asarray(out) for out in fn(*(a[s] for a in arrays))] for s in slices]
    return [np.concatenate(parts) for parts in zip(*chunks)]


# --------------------------------------------------------------------------- the graph as calls


@dataclass(frozen=True)
class Call:
    """One call of a layer in a model's graph.

    layer   : the layer (or nested model) called; an InputLayer for the model's input
    inputs  : ids of the tensors it reads (empty for an input)
    outputs : ids of the tensors it writes
    shape   : the shape of its first output, without the batch axis
    """

    layer: object
    inputs: tuple
    outputs: tuple
    shape: tuple


def calls(model):
    """The layer calls of a functional or Sequential model in an order where every tensor is
    written before it is read, and the ids of the model's input and output tensors."""
    graph = _graph_of(graph_model(model))
    found = []
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            inputs = () if node.is_input else tuple(id(t) for t in node.input_tensors)
            found.append(Call(node.operation, inputs, tuple(id(t) for t in node.outputs),
                              tuple(node.outputs[0].shape[1:])))
    return found, tuple(id(t) for t in graph.inputs), tuple(id(t) for t in graph.outputs)


@dataclass(frozen=True)
class ProgramCall:
    """One layer call of ``program(model)``: the layer or operation (nested models are entered),
    its "outer/inner" name, the ids of the tensors it reads and writes, and its Keras node."""

    layer: object
    name: str
    inputs: tuple
    outputs: tuple
    node: object

    def apply(self, values: dict) -> list:
        """Its outputs (a list) on ``values``: {id of each input tensor: the value to use}."""
        from keras import tree

        args, kwargs = self.node.arguments.fill_in(values)
        return tree.flatten(self.layer(*args, **kwargs))


def _flat_program(program, prefix, aliases, found) -> list:
    """The calls of ``program`` with nested models entered, in run order; ``aliases`` receives,
    for each nested model's inputs and outputs, the id of the tensor each one stands for."""
    _, steps, _ = program
    for node, inner in steps:
        layer = node.operation
        if inner is None:
            found.append(ProgramCall(layer, prefix + layer.name,
                                     tuple(id(t) for t in node.input_tensors),
                                     tuple(id(t) for t in node.outputs), node))
        else:
            aliases.update({id(s): id(t) for s, t in zip(inner[0], node.input_tensors)})
            _flat_program(inner, prefix + layer.name + "/", aliases, found)
            aliases.update({id(t): id(r) for t, r in zip(node.outputs, inner[2])})
    return found


def program(model) -> tuple:
    """``model``'s graph as (id of its input tensor, [ProgramCall in run order], {alias: id},
    id of its output tensor): the calls ``tap`` replays, nested models entered. A nested model's
    inputs are aliases of the tensors it was called on, its outputs of its inner outputs."""
    def build():
        (inputs, _, outputs), aliases = _program_of(model), {}
        found = _flat_program(_program_of(model), "", aliases, [])
        return id(inputs[0]), found, aliases, id(outputs[0])

    return memo(model, ("flat program",), build)
