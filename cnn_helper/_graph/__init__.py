"""Keras-graph plumbing and caches (private): the only package that touches Keras internals.

- :mod:`.cache`     : ``memo(owner, key, build)``, the one cache: whatever the package builds for
  a model (a compiled step, a clone, a functional twin, its program) is kept per model and dies
  with it.
- :mod:`.twin`      : the functional twin of a subclassed model that has been called (its
  ``call`` traced on a symbolic input, same layers).
- :mod:`.lookup`    : layers by name, ``walk`` (``walk_operations``: with the ``keras.ops``
  nodes), ``layer_names``, ``find_layer``, ``path_name``; a layer of a nested model is
  "outer/inner".
- :mod:`.traversal` : the model's graph, read in one place: ``program(model)``, its layer calls
  in run order, nested models entered, tensors numbered; ``run`` executes it. The forward pass,
  the receptive-field walk, incremental occlusion and the batch size all follow it.
- :mod:`.inputs`    : the model's input, ``check_images`` (integer pixels accepted when the
  model scales them).
- :mod:`.shapes`    : ``output_shape`` of any layer.
- :mod:`.forward`   : ``tap(model, layers)``, the function x -> [y_(l) for each l], one pass
  through the program; ``forward`` is it compiled, for batches of any size.
- :mod:`.batching`  : the batch policy, ``batch_size`` ("auto") and ``run_batched``.
- :mod:`.compiled`  : what TensorFlow compiles (``input_spec``).

The rest of the package calls these as ``_graph.<name>``:

>>> y_conv2, logits = _graph.forward(model, ["conv2", "logits"])(x)
"""
from __future__ import annotations

from .batching import FREE_SIZE_BATCH, MAX_BATCH, MEMORY_PER_CALL, batch_size, run_batched
from .cache import memo
from .compiled import input_spec
from .forward import forward, tap
from .inputs import (
                     check_images,
                     input_shape,
                     model_input,
                     outside_training_range,
                     takes_integer_images,
                     training_range,
)
from .lookup import find_layer, layer_names, path_name, walk, walk_operations
from .shapes import output_shape
from .traversal import Call, Program, graph_model, output_layer, program, run

__all__ = ["memo", "graph_model", "walk", "walk_operations", "layer_names", "find_layer",
           "path_name",
           "output_layer", "model_input", "input_shape", "input_spec", "takes_integer_images",
           "training_range", "outside_training_range",
           "check_images", "output_shape", "program", "run", "Call", "Program", "tap", "forward",
           "batch_size", "run_batched", "MEMORY_PER_CALL", "MAX_BATCH", "FREE_SIZE_BATCH"]
