r"""Ablation: what the network says without feature map k.

Ablating the feature maps :math:`K = \{k_1, k_2, \dots\}` of layer l replaces each of them by a
constant v (``value``, 0 by default) at every location idx, and runs the rest of the network on
the changed layer output:

.. math::  \tilde\y_{(l),idx,k} = \begin{cases} v & k \in K \\ \y_{(l),idx,k} & k \notin K
           \end{cases} \qquad\qquad
           \tilde\y_{(L)} = f_{(L)} \circ \dots \circ f_{(l+1)}\,(\tilde\y_{(l)})

Every later layer that reads :math:`\y_{(l)}`, directly or through a branch (a residual
connection, a concatenation), reads the changed maps; the layers before l are not affected.
Comparing :math:`\tilde\y_{(L)}` with the model's own output :math:`\y_{(L)}` shows how much the
network's answer relies on those maps. A Dense layer has no spatial axes: its "map" k is its
unit k.

How it is computed: the model's own layers are run call by call (the model's program,
``_graph.program``, the forward pass every method uses), with the call of layer l wrapped so that
its output has the maps of K replaced. Your model is never changed. One compiled step per
(model, layer) takes the channels as a boolean mask and v as a number, so ablating another map,
or using another v, does not compile again; the result does not depend on ``batch_size``. A
layer called more than once (shared weights) is ablated at its first call, the output every
method of the package reads as :math:`\y_{(l)}`.

Example
-------
>>> full = ablation.predict(model, x_test[:100], "conv3", [])        # nothing ablated: model(x)
>>> without = ablation.predict(model, x_test[:100], "conv3", 15)     # y_(conv3),k=15 set to 0
>>> without.shape                                                    # one row per image
(100, 10)
>>> changed = (without.argmax(axis=1) != full.argmax(axis=1)).mean()   # answers that change
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from . import _checks, _graph


def channel_mask(channels, n_channels: int, layer: str) -> np.ndarray:
    """``channels`` (an int, or a sequence of ints, possibly empty) as a boolean mask (C,): True
    for each map k to ablate. A ValueError names the channels out of 0..C-1.

    >>> channel_mask([1, 3], 5, "conv1")
    array([False,  True, False,  True, False])
    """
    listed = [channels] if _checks.is_int(channels) else channels
    if isinstance(listed, (str, bytes)) or not hasattr(listed, "__iter__"):
        raise TypeError(f"channels must be an int or a list of ints, got {channels!r}")
    listed = list(listed)
    if not all(_checks.is_int(k) for k in listed):
        raise TypeError(f"channels must be an int or a list of ints, got {channels!r}")
    outside = [int(k) for k in listed if not 0 <= k < n_channels]
    if outside:
        raise ValueError(f"channels {outside} are out of range for layer {layer!r}: it has "
                         f"channels 0..{n_channels - 1}")
    mask = np.zeros(n_channels, bool)
    mask[[int(k) for k in listed]] = True
    return mask


def checked_layer(model, layer) -> tuple:
    """(path name, number of channels C) of ``layer`` (a name or a layer of ``model``); a
    ValueError for a layer the model does not call, or one whose output has no channels axis.

    >>> checked_layer(model, "conv3")                      # the course CNN
    ('conv3', 64)
    """
    name = _graph.path_name(model, layer)
    shape = _graph.output_shape(model, name)
    if len(shape) == 0 or shape[-1] is None:
        raise ValueError(f"layer {name!r} has output shape {shape} (no batch axis): it has no "
                         "channels axis of known size to ablate; choose a layer with feature "
                         "maps (H, W, C) or units (C,)")
    return name, int(shape[-1])


def _ablated_program(found: _graph.Program, name: str, ablate) -> tuple:
    """(the program with ``ablate`` applied to the output of layer ``name``, whether ``ablate``
    must instead be applied to the model's input, when ``name`` is the input layer)."""
    from keras import tree

    tensor = next(call for call in found.calls if call.name == name).outputs[0]
    if tensor in found.inputs:
        return found, True
    index = next(i for i, call in enumerate(found.calls)
                 if call.computes and tensor in call.outputs)
    call = found.calls[index]
    position = call.outputs.index(tensor)

    def ablated_layer(*args, **kwargs):
        outputs = tree.flatten(call.layer(*args, **kwargs))
        outputs[position] = ablate(outputs[position])
        return outputs

    calls = found.calls[:index] + (replace(call, layer=ablated_layer),) + found.calls[index + 1:]
    return found._replace(calls=calls), False


def _step(model, name: str, n_channels: int):
    """Compiled, once per (model, layer): (x (B, ...) float32, mask (C,) bool, v float32) ->
    the model's output (B, ...) float32 with the maps of the mask set to v."""
    import tensorflow as tf
    from keras import ops

    def build():                           # holds the model's program, never the model
        found, dtype = _graph.program(model), _graph.model_input(model).dtype
        head = _graph.path_name(model, _graph.output_layer(model))
        specs = [_graph.input_spec(model, "float32"), tf.TensorSpec((n_channels,), tf.bool),
                 tf.TensorSpec((), tf.float32)]

        @tf.function(autograph=False, input_signature=specs)
        def step(x, mask, value):
            def ablate(y):
                return ops.where(mask, ops.cast(value, y.dtype), y)

            ablated, at_input = _ablated_program(found, name, ablate)
            x = ops.cast(x, dtype)
            named = _graph.run(ablated, [ablate(x) if at_input else x], frozenset([head]))
            return tf.cast(named[head], tf.float32)   # a mixed-precision head gives float16

        return step

    return _graph.memo(model, ("ablation step", name), build)


def predict(model, x, layer, channels, value=0.0, batch_size=256) -> np.ndarray:
    r"""The model's output on the images x with the maps ``channels`` of ``layer`` set to
    ``value`` everywhere: :math:`\tilde\y_{(L)}` of the module docstring, for every image.

    model      : a Keras model (functional, Sequential, or subclassed and called once)
    x          : images (N, H, W, C), or one image (H, W, C)
    layer      : the layer l, by name ("outer/inner" inside a nested model) or as the layer
    channels   : the maps k to ablate: an int or a sequence of ints; [] ablates nothing, so the
                 result is the model's own output
    value      : v, the number every ablated map becomes (0.0: the map is switched off)
    batch_size : images per compiled call ("auto" as in the other methods); never changes the
                 result
    Returns (N, n_outputs) float32 (for a classifier, its probabilities or logits, as the model
    outputs them); one image in, (n_outputs,) out. Unknown layers, channels out of range, a
    layer without channels and images of the wrong shape are ValueErrors that name the value.

    >>> p = ablation.predict(model, x_test[:8], "conv3", [3, 15])       # (8, 10) probabilities
    >>> q = ablation.predict(model, x_test[:8], "conv3", 3, value=1.0)   # the map held at 1
    """
    name, n_channels = checked_layer(model, layer)
    mask = channel_mask(channels, n_channels, name)
    if not _checks.is_number(value):
        raise ValueError(f"value must be a finite number (what the ablated maps become), got "
                         f"{value!r}")
    x, single = _graph.check_images(model, x)
    step = _step(model, name, n_channels)
    outputs, = _graph.run_batched(lambda xb: [step(xb, mask, np.float32(value))],
                                  _graph.batch_size(model, batch_size), x)
    return outputs[0] if single else outputs
