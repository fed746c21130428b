"""The functional twin of a subclassed model: its ``call`` traced once on a symbolic input, so
that every layer it calls becomes a node of a graph (same layers, same weights)."""
from __future__ import annotations


def first_call_shape(model) -> tuple:
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


def functional_twin(model):
    """A functional model that calls the layers of the subclassed ``model`` as its ``call`` does.

    ``model.call`` is run once on a symbolic ``keras.Input``, so every layer it calls becomes a
    node of a graph; the twin shares the model's layers and weights. A TypeError says how to
    write a model whose call cannot be traced.
    """
    import keras

    inputs = keras.Input(first_call_shape(model)[1:], name=f"{model.name}_input")
    try:
        outputs = model.call(inputs)
    except Exception as e:
        raise TypeError(
            f"model {model.name!r} is a subclassed {type(model).__name__} whose call() cannot be "
            f"traced on a symbolic keras.Input ({type(e).__name__}: {str(e).splitlines()[0]}). "
            "cnn_helper reads a model's layers from its graph: write call() with Keras layers "
            "and keras.ops only, or build the model as a functional or Sequential model") from e
    return keras.Model(inputs, outputs, name=f"{model.name}_functional")
