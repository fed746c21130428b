"""The model's graph, read in one place: ``program(model)``.

A functional or Sequential model is a graph of layer calls (Keras' nodes); a subclassed model
that has been called is read through its functional twin. ``program`` reads that graph once into
a list of calls, in an order where every tensor is written before it is read, every tensor
numbered. A nested model is entered: its own calls stand in its place, named "outer/inner", its
inputs are the tensors it was called on and its outputs those of its inner calls. Whatever
follows a model's graph follows its program:

- ``run(program, inputs)``: the calls executed one by one (``tap``, the traced shapes);
- the receptive-field walk carries a field along each tensor (receptive_field.walk);
- incremental occlusion recomputes each call in windows (incremental.plan);
- the "auto" batch size counts the values of every tensor.

This module is the only one that reads Keras' graph internals (``_nodes_by_depth``,
``_keras_history``, a Sequential model's ``_functional``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from .cache import memo
from .lookup import check_channels_last
from .twin import functional_twin


@dataclass(frozen=True)
class Call:
    """One entry of a program.

    kind    : "input": a model's input (a nested model's stands for the tensor it was called
              on); "layer": a layer or keras.ops operation called on tensors; "block": a nested
              model whose own calls are not known (a subclassed model whose call() cannot be
              traced), called as one layer; "model": a nested model, after its own calls
    layer   : the layer, operation or model
    name    : its "outer/inner" path name
    inputs  : the numbers of the tensors it reads ("layer" and "block"; () otherwise)
    outputs : the numbers of the tensors it writes ("layer" and "block") or names ("input":
              the tensor it stands for, "model": its inner outputs)
    shape   : its (first) output's shape in the graph, without the batch axis
    node    : its Keras node
    """

    kind: str
    layer: object
    name: str
    inputs: tuple
    outputs: tuple
    shape: tuple
    node: object

    @property
    def computes(self) -> bool:
        """Whether it computes its outputs ("layer", "block") rather than naming tensors."""
        return self.kind in ("layer", "block")

    def apply(self, values: dict) -> list:
        """Its outputs (a list) on ``values``: {tensor number: value}, its inputs' among them."""
        from keras import tree

        own = {id(t): values[n] for t, n in zip(self.node.input_tensors, self.inputs)}
        args, kwargs = self.node.arguments.fill_in(own)
        return tree.flatten(self.layer(*args, **kwargs))


class Program(NamedTuple):
    """A model's graph as a program.

    inputs  : the numbers of the model's input tensors
    calls   : the Calls in run order, nested models entered
    shapes  : {path name: output shape (no batch axis)} of every call, input and nested model,
              as the graph recorded them when it was built
    outputs : the numbers of the model's output tensors
    """

    inputs: tuple
    calls: tuple
    shapes: dict
    outputs: tuple


def graph_of(model):
    """The functional graph of a model (a Sequential model keeps one inside)."""
    return getattr(model, "_functional", None) or model


def has_graph(model) -> bool:
    """Whether ``model`` is functional or a built Sequential model: a graph of layer calls."""
    return hasattr(graph_of(model), "_nodes_by_depth")


def graph_model(model):
    """``model`` as a graph of layer calls: itself when it is functional or Sequential, and for a
    subclassed model that has been called, its functional twin (same layers, same weights)."""
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
    check_channels_last(model)
    if has_graph(model):
        return model
    return memo(model, ("functional twin",), lambda: functional_twin(model))


def _entered(layer):
    """The graph of a nested model to enter; None for a layer, or for a nested model whose calls
    are not known (called as one block)."""
    import keras

    if not isinstance(layer, keras.Model):
        return None
    try:
        return graph_of(graph_model(layer))
    except TypeError:
        return None


class _Reader:
    """Reads graphs into ``calls``, numbering their tensors."""

    def __init__(self, n_inputs: int):
        self.calls, self.count = [], n_inputs

    def number(self, numbers: dict, tensor) -> int:
        """The number of ``tensor`` in a graph whose numbers are ``numbers`` (a new one the
        first time it is met)."""
        if id(tensor) not in numbers:
            numbers[id(tensor)], self.count = self.count, self.count + 1
        return numbers[id(tensor)]

    def read(self, graph, inputs, prefix: str) -> list:
        """Append the calls of ``graph``, whose input tensors are numbered ``inputs``; return
        the numbers of its outputs. Each call of a nested model numbers its tensors anew."""
        numbers = {id(t): n for t, n in zip(graph.inputs, inputs)}
        for depth in sorted(graph._nodes_by_depth, reverse=True):
            for node in graph._nodes_by_depth[depth]:
                self.node(node, numbers, prefix)
        return [numbers[id(t)] for t in graph.outputs]

    def node(self, node, numbers: dict, prefix: str):
        """Append the Call(s) of one node: an input, a layer, or a nested model entered."""
        import keras

        layer, name = node.operation, prefix + node.operation.name
        shape = tuple(node.outputs[0].shape[1:])
        if node.is_input:
            tensor = self.number(numbers, node.outputs[0])
            self.calls.append(Call("input", layer, name, (), (tensor,), shape, node))
            return
        inputs = tuple(self.number(numbers, t) for t in node.input_tensors)
        inner = _entered(layer)
        if inner is None:
            kind = "block" if isinstance(layer, keras.Model) else "layer"
            outputs = tuple(self.number(numbers, t) for t in node.outputs)
            self.calls.append(Call(kind, layer, name, inputs, outputs, shape, node))
            return
        outputs = tuple(self.read(inner, inputs, name + "/"))
        numbers.update({id(t): n for t, n in zip(node.outputs, outputs)})
        self.calls.append(Call("model", layer, name, (), outputs, shape, node))


def program(model) -> Program:
    """``model``'s graph as a Program (built once per model): its calls in run order, nested
    models entered, each reading and writing numbered tensors. It holds the model's layers and
    nodes, not the model.

    >>> found = program(model)                      # the course CNN
    >>> [(call.kind, call.name) for call in found.calls][:3], found.inputs, found.outputs
    ([('input', 'input'), ('layer', 'conv1'), ('layer', 'pool1')], (0,), (11,))
    """
    def build():
        graph = graph_of(graph_model(model))
        inputs = tuple(range(len(graph.inputs)))
        reader = _Reader(len(inputs))
        outputs = reader.read(graph, inputs, "")
        shapes = {}
        for call in reader.calls:
            shapes.setdefault(call.name, call.shape)
        return Program(inputs, tuple(reader.calls), shapes, tuple(outputs))

    return memo(model, ("program",), build)


def run(found: Program, inputs: list, wanted=None) -> dict:
    """Run a program on ``inputs`` (a value per model input), one call at a time: {path name:
    value} of every call, input and nested model (a list for several outputs; the first call of
    a name counts). A nested model is not called as one block, its own calls are, so an inner
    layer of a transfer-learning base and the head come from one pass, each layer run once. It
    stops once every name in ``wanted`` (a set) is found."""
    values, named = dict(zip(found.inputs, inputs)), {}
    for call in found.calls:
        if call.computes:
            outputs = call.apply(values)
            values.update(zip(call.outputs, outputs))
        elif call.outputs[0] in values:
            outputs = [values[n] for n in call.outputs]
        else:
            continue                                   # an input the model is not fed
        named.setdefault(call.name, outputs[0] if len(outputs) == 1 else outputs)
        if wanted is not None and wanted <= named.keys():
            break
    return named


def output_layer(model):
    """The layer that produces the model's (single) output: the head y_(L)."""
    outputs = graph_model(model).outputs
    if len(outputs) != 1:
        raise ValueError(f"model {model.name!r} has {len(outputs)} outputs; give a Feature "
                         "naming the layer to explain instead of a class index")
    return outputs[0]._keras_history[0]
