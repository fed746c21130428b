"""Layers by name: every layer of a model, nested models' layers named "outer/inner"."""
from __future__ import annotations

from .cache import memo


def walk(model, prefix=""):
    """Yield (path name, [layers from the model down to it]) for every layer, nested models too.

    >>> [name for name, path in walk(transfer)][:3]      # a MobileNetV2 base, then a head
    ['input_layer_1', 'mobilenetv2_1.00_96', 'mobilenetv2_1.00_96/input_layer']
    """
    import keras

    for layer in model.layers:
        name = prefix + layer.name
        yield name, [layer]
        if isinstance(layer, keras.Model):
            for inner_name, inner_path in walk(layer, name + "/"):
                yield inner_name, [layer] + inner_path


def walk_operations(model, prefix=""):
    """``walk``, with the operation nodes of functional models too: a ``keras.ops`` function
    called on the graph's tensors (``keras.ops.relu(h)``) is a node that holds no weights and is
    no layer, so ``model.layers`` leaves it out.

    >>> [type(path[-1]).__name__ for _, path in walk_operations(model)]  # ['InputLayer', 'Conv2D',
    ...                                                                  #  'Relu', ...]
    """
    import keras

    for layer in getattr(model, "operations", model.layers):
        name = prefix + layer.name
        yield name, [layer]
        if isinstance(layer, keras.Model):
            for inner_name, inner_path in walk_operations(layer, name + "/"):
                yield inner_name, [layer] + inner_path


def layer_names(model) -> list:
    """Names of every layer; layers of nested models as "outer/inner"."""
    return [name for name, _ in walk(model)]


def find_layer(model, layer) -> list:
    """A layer (name, "outer/inner" path, or the layer object) as its path of layers.

    A bare name of a layer inside a nested model is accepted when it is unique.

    >>> [part.name for part in find_layer(transfer, "out_relu")]
    ['mobilenetv2_1.00_96', 'out_relu']
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
    raise ValueError(f"model {model.name!r} has no layer {layer!r}"
                     f"{_did_you_mean(layer, names)}; its layers are {names}")


def _did_you_mean(name: str, names: list) -> str:
    """The hint " (did you mean 'conv2'?)" naming the layer closest to a mistyped ``name`` (case
    ignored; a nested layer by its path or its own name), or "" when none is close.

    >>> _did_you_mean("Conv2", ["conv1", "conv2", "dense"])
    " (did you mean 'conv2'?)"
    """
    import difflib

    spellings = {}                                      # lower-case spelling -> layer path name
    for path in names:
        for spelling in (path, path.split("/")[-1]):
            spellings.setdefault(spelling.lower(), path)
    closest = difflib.get_close_matches(name.lower(), list(spellings), n=1)
    return f" (did you mean {spellings[closest[0]]!r}?)" if closest else ""


def path_name(model, layer) -> str:
    """The "outer/inner" name of a layer: it names the same layer in a clone of the model."""
    return "/".join(part.name for part in find_layer(model, layer))


def check_channels_last(model):
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
