r"""Sanity checks for saliency maps (Adebayo et al. 2018, "Sanity checks for saliency maps").

A saliency map that explains the *model* must change when the model changes. Two tests:

- **Model randomization** (:func:`model_randomization`): re-initialize the weights of the
  model's layers, each with its own initializers (``kernel_initializer``, ``bias_initializer``,
  batch normalization's, a depthwise kernel's...; seeded), and recompute the maps.
  ``mode="cascading"``: the top layer first, then the one below it too, and so on down to the
  first layer (step i has layers 1..i of the top-down order randomized); ``mode="independent"``:
  one layer at a time, the others trained. Only layers that hold weights are steps.
- **Data randomization** (:func:`data_randomization`): the same architecture trained on
  permuted labels (``models.permuted_labels``) memorizes the training set but has learned
  nothing about digits; compare its maps with the true model's.

A map that hardly changes (guided backpropagation is the paper's example) shows the image's
edges, not what the model uses. Each map is compared with the reference map (the trained
model's) of the same image by four measures, one number per image
(:func:`similarities`); with :math:`m` the channel-summed map :math:`\sum_c S_c` and :math:`|m|`
the channel sum of :math:`|S_c|`:

- ``spearman``     : Spearman rank correlation of the signed maps :math:`m` (all pixels);
- ``spearman_abs`` : Spearman rank correlation of :math:`|m|`;
- ``ssim``         : SSIM (``similarity.ssim``) of :math:`|m| / \max |m|`, data range 1;
- ``hog``          : Pearson correlation of the HOG features (``similarity.hog``) of
  :math:`|m| / \max |m|`, cells of a 7th of each side (4x4 pixels at 28x28), blocks of 2x2 cells.

A constant map (all zero: a Grad-CAM whose ReLU cut everything) has no rank order: NaN.

Your model is never changed: the layers are randomized in a copy (``_override.clone_with``,
functional, Sequential, nested and called subclassed models), whose compiled gradient steps are
built once and reused for every step; each step is one batched call of the method. The four
measures of a step's maps are one compiled TensorFlow step too (``similarity``'s ``ranks_of``,
``ssim_of``, ``hog_of``, ``pearson_of``, in float64), traced once per shape of maps; the
trained model's side (its ranks, |m| / max |m|, HOG features) is computed once.

Example
-------
>>> r = model_randomization(model, eights[:16], 8, "guided_backprop")
>>> r.layers                     # ('logits', 'dense', 'conv3', 'conv2', 'conv1')
>>> r.spearman_abs.mean(axis=1)  # one mean per step: still high for guided backprop
>>> d = data_randomization(model, models.load("cnn_random_labels"), eights[:16], 8, "gradient")
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from . import _checks, _graph, _override, methods, similarity
from ._checks import BATCH_SIZE

MODES = ("cascading", "independent")
MEASURES = ("spearman", "spearman_abs", "ssim", "hog")
HOG_CELLS = 7            # HOG cells per side of a map
HOG_BLOCK = (2, 2)       # cells per HOG block (Dalal & Triggs)


@dataclass(frozen=True)
class ModelRandomization:
    """The maps of a model whose layers were randomized step by step, and how alike they stay.

    mode         : "cascading" or "independent"
    method       : the method's name
    layers       : the randomized layers, in order (top first), one per step
    original     : (N, ...) the maps of the trained model (the reference)
    maps         : (steps, N, ...) the maps after each step
    spearman, spearman_abs, ssim, hog : (steps, N) each map against its original (module
                   docstring)
    """

    mode: str
    method: str
    layers: tuple
    original: np.ndarray
    maps: np.ndarray
    spearman: np.ndarray
    spearman_abs: np.ndarray
    ssim: np.ndarray
    hog: np.ndarray

    def __repr__(self) -> str:
        """One line, not the arrays: ModelRandomization('gradient', cascading, 5 steps
        'logits'..'conv1', 8 maps 28x28x1, mean spearman_abs at the last step 0.12)."""
        span = f" {self.layers[0]!r}..{self.layers[-1]!r}" if self.layers else ""
        last = f"{np.mean(self.spearman_abs[-1]):.3g}" if len(self.layers) else "none"
        return (f"ModelRandomization({self.method!r}, {self.mode}, {len(self.layers)} steps"
                f"{span}, {_maps_text(self.original)}, mean spearman_abs at the last step "
                f"{last})")


def _maps_text(maps) -> str:
    """How many maps and of what shape, for a one-line repr: "8 maps 28x28x1"."""
    return f"{len(maps)} maps {'x'.join(map(str, np.shape(maps)[1:]))}"


@dataclass(frozen=True)
class DataRandomization:
    """The maps of the true model and of the model trained on permuted labels.

    method   : the method's name
    original : (N, ...) the true model's maps (the reference)
    maps     : (N, ...) the random-label model's maps
    spearman, spearman_abs, ssim, hog : (N,) each map against its original
    """

    method: str
    original: np.ndarray
    maps: np.ndarray
    spearman: np.ndarray
    spearman_abs: np.ndarray
    ssim: np.ndarray
    hog: np.ndarray

    def __repr__(self) -> str:
        """One line, not the arrays: DataRandomization('gradient', 8 maps 28x28x1, mean
        spearman 0.05, spearman_abs 0.21, ssim 0.33, hog 0.41)."""
        means = ", ".join(f"{name} {np.mean(getattr(self, name)):.3g}"
                          for name in MEASURES)
        return f"DataRandomization({self.method!r}, {_maps_text(self.original)}, mean {means})"


# --------------------------------------------------------------------------- comparing maps


def _checked(maps, what: str) -> np.ndarray:
    """maps (N, H, W, C) as float64."""
    maps = np.asarray(maps, np.float64)
    if maps.ndim != 4:
        raise ValueError(f"{what} must be maps (N, H, W, C), got shape {maps.shape}")
    return maps


def _features(maps) -> dict:
    """What the four measures read from a float64 tensor of maps (N, H, W, C), in a compiled
    step: the ranks of m and of |m| (channels summed; (2N, pixels), m's first), |m| / max |m| (a
    zero map stays zero) and its HOG features (left out when the maps are too small for one
    block)."""
    import tensorflow as tf

    signed, magnitude = tf.reduce_sum(maps, axis=-1), tf.reduce_sum(tf.abs(maps), axis=-1)
    unit = tf.math.divide_no_nan(magnitude, tf.reduce_max(magnitude, axis=[1, 2], keepdims=True))
    both = tf.reshape(tf.stack([signed, magnitude]), (-1, signed.shape[1] * signed.shape[2]))
    features = {"ranks": similarity.ranks_of(both), "unit": unit}
    cells = tuple(max(1, side // HOG_CELLS) for side in unit.shape[1:])
    if all(side // c >= b for side, c, b in zip(unit.shape[1:], cells, HOG_BLOCK)):
        features["hog"] = similarity.hog_of(unit, 9, cells, HOG_BLOCK)
    return features


def _compare(reference: dict, maps: dict) -> dict:
    """{measure: (N,)} from the ``_features`` of the reference and of the maps (tensors)."""
    import tensorflow as tf

    ones = tf.ones_like(maps["unit"][:, 0, 0])                    # SSIM's data range, 1
    spearman, spearman_abs = tf.split(similarity.pearson_of(maps["ranks"], reference["ranks"]),
                                      2)
    hog = similarity.pearson_of(maps["hog"], reference["hog"]) if "hog" in maps else \
        ones * np.nan
    return {"spearman": spearman, "spearman_abs": spearman_abs,
            "ssim": similarity.ssim_of(maps["unit"], reference["unit"], ones), "hog": hog}


def _measured(reference: dict, maps) -> dict:
    """``_compare`` of the reference's features with those of maps: one compiled step."""
    return _compare(reference, _features(maps))


def _measure(reference: dict, maps) -> dict:
    """{measure: (N,) NumPy} of maps (N, H, W, C) against the reference's ``_features``."""
    measured = similarity.compiled(_measured)(reference, _checked(maps, "maps"))
    return {name: values.numpy() for name, values in measured.items()}


def similarities(reference, maps) -> dict:
    """{measure: (N,)}: each of ``maps`` (N, H, W, C) against the map of ``reference`` of the
    same index, by the four measures of the module docstring (Spearman: the Pearson correlation
    of the ranks, ties given their mean rank, as ``scipy.stats.spearmanr``).

    >>> similarities(saliency.gradient(model, x, 8), saliency.guided_backprop(model, x, 8))
    """
    reference, maps = _checked(reference, "reference"), _checked(maps, "maps")
    if reference.shape[:-1] != maps.shape[:-1]:
        raise ValueError(f"reference maps {reference.shape[:-1]} and maps {maps.shape[:-1]} "
                         "(channels summed) differ: compare maps of the same images")
    return _measure(similarity.compiled(_features)(reference), maps)


# --------------------------------------------------------------------------- the method


def _method(method, options, batch_size):
    """(name, explain(model, x, target) -> maps (N, ...)) for a method name or function."""
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise TypeError(f"options must be a dict of the method's keyword arguments, e.g. "
                        f"{{'sign': 'abs'}}, got {options!r}")
    function = methods.get(method)
    name = methods.name_of(method)
    if isinstance(method, str):
        options = dict({"batch_size": batch_size}, **options)

    def explain(model, x, target):
        maps = np.asarray(function(model, x, target, **options), np.float32)
        if maps.shape[:1] != x.shape[:1] or maps.ndim != 4:
            raise ValueError(f"method {name!r} returned maps of shape {maps.shape} for images "
                             f"{x.shape}; it must return one map (H, W, C) per image")
        return maps

    return name, explain


# --------------------------------------------------------------------------- randomizing layers


_COPY = _override.Policy("randomization copy", lambda layer, config: None)


def _layer_seed(seed: int, name: str) -> int:
    """A seed for layer ``name`` from ``seed``: the same layer gets the same weights in
    either mode and in every call."""
    digest = hashlib.blake2b(f"{seed}/{name}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little") >> 1


def _seeded(config: dict, seed: int) -> dict:
    """A layer config whose random initializers (the ``*_initializer`` entries) get ``seed``."""
    import keras

    config = dict(config)
    for key, value in config.items():
        if not key.endswith("_initializer") or value is None:
            continue
        if isinstance(value, str):
            value = keras.initializers.serialize(keras.initializers.get(value))
        inner = value.get("config") if isinstance(value, dict) else None
        if isinstance(inner, dict) and "seed" in inner:
            config[key] = dict(value, config=dict(inner, seed=seed))
    return config


def _fresh_weights(layer, seed: int) -> list:
    """New weights for ``layer``, drawn by its own initializers: the same layer rebuilt from its
    config (initializers seeded) on its input shape."""
    try:
        fresh = type(layer).from_config(_seeded(layer.get_config(), seed))
        fresh.build_from_config(layer.get_build_config())
    except Exception as e:
        raise TypeError(f"layer {layer.name!r} ({type(layer).__name__}) cannot be rebuilt from "
                        f"its config to draw new weights ({type(e).__name__}: {e}); leave it "
                        "out with layers=[...]") from e
    values = [np.asarray(w) for w in fresh.weights]
    if [v.shape for v in values] != [tuple(w.shape) for w in layer.weights]:
        raise TypeError(f"layer {layer.name!r} rebuilt from its config has weights of shapes "
                        f"{[v.shape for v in values]}, not {[w.shape for w in layer.weights]}; "
                        "leave it out with layers=[...]")
    return values


def _has_weights(layer) -> bool:
    """A layer (not a nested model) with weights learned in training: preprocessing layers
    (a Normalization's data statistics) are left out."""
    import keras

    return bool(layer.weights) and not isinstance(layer, keras.Model) and \
        not type(layer).__module__.startswith("keras.src.layers.preprocessing")


def randomizable_layers(model) -> tuple:
    """The names ("outer/inner" in a nested model) of the layers with weights, top first: the
    order of the cascading randomization.

    >>> randomizable_layers(model)
    ('logits', 'dense', 'conv3', 'conv2', 'conv1')
    """
    names, seen = [], set()
    for call in _graph.program(model).calls:
        if call.computes and id(call.layer) not in seen and _has_weights(call.layer):
            seen.add(id(call.layer))
            names.append(call.name)
    return tuple(reversed(names))


def _chosen_layers(copy, layers) -> tuple:
    """The layers to randomize, top first: all with weights, or those of ``layers``."""
    order = randomizable_layers(copy)
    if layers is None:
        return order
    wanted = [_graph.path_name(copy, layer if isinstance(layer, str) else layer.name)
              for layer in _checks.layer_list(layers)]
    missing = [name for name in wanted if name not in order]
    if missing:
        raise ValueError(f"layers {missing} hold no weights to randomize; layers with weights, "
                         f"top first: {list(order)}")
    return tuple(name for name in order if name in wanted)


def _assign(layer, values):
    for variable, value in zip(layer.weights, values):
        variable.assign(value)


def _randomized_maps(copy, layers, mode, seed, explain, x, target, measure) -> tuple:
    """((steps, N, ...) maps of ``copy`` after each step, [``measure(maps)`` of each step]).
    The copy's layers are re-assigned in place, so its compiled steps (one per method and rule)
    serve every step; the measures of step i run in a thread while step i + 1 is computed."""
    from concurrent.futures import ThreadPoolExecutor

    path = {name: _graph.find_layer(copy, name)[-1] for name in layers}
    trained = {name: [np.asarray(w) for w in path[name].weights] for name in layers}
    fresh = {name: _graph.memo(copy, ("fresh weights", name, seed), lambda name=name:
                               _fresh_weights(path[name], _layer_seed(seed, name)))
             for name in layers}
    maps, measured = [], []
    with ThreadPoolExecutor(max_workers=1) as worker:
        for i, name in enumerate(layers):
            if mode == "independent" and i > 0:
                _assign(path[layers[i - 1]], trained[layers[i - 1]])
            _assign(path[name], fresh[name])
            maps.append(explain(copy, x, target))
            measured.append(worker.submit(measure, maps[-1]))
    return np.stack(maps), [future.result() for future in measured]


def model_randomization(model, x, target, method, mode: str = "cascading", layers=None,
                        seed: int = 0, options=None, batch_size=BATCH_SIZE) -> ModelRandomization:
    r"""Adebayo et al.'s model-parameter randomization test (module docstring).

    ``method``: an attribution function (called as ``method(model, x, target, **options)``) or
    its name (one of ``methods.METHODS``: ``"gradient"``, ``"guided_backprop"``, ``"grad_cam"``,
    ``"rise"``, ``"occlusion"``...; given ``batch_size`` too). ``options``: its keyword
    arguments, e.g. ``{"sign": "abs"}`` for :math:`|\partial s / \partial x|` or
    ``{"n_samples": 16}``. ``layers``: the layers to
    randomize (default: every layer with weights, ``randomizable_layers``); they are always
    taken top first. ``seed``: the new weights of layer l come from (seed, l's name), so they
    are the same in both modes. One image or a batch: the results always have the batch axis.

    Returns a :class:`ModelRandomization`: step i of ``mode="cascading"`` has ``layers[:i+1]``
    randomized; of ``"independent"``, ``layers[i]`` alone. ``spearman[i, n]`` compares the map of
    image n at step i with ``original[n]``.

    >>> r = model_randomization(model, eights[:8], 8, "gradient", options={"sign": "abs"})
    >>> r.ssim.mean(axis=1)          # falls as more layers are randomized
    """
    mode = _checks.one_of(mode, "mode", MODES)
    seed = _checks.seed(seed)
    x, _ = _graph.check_images(model, x)
    name, explain = _method(method, options, _checks.batch_size(batch_size))
    copy = _override.clone_with(model, _COPY)          # your model's current weights
    chosen = _chosen_layers(copy, layers)
    original = explain(copy, x, target)
    reference = similarity.compiled(_features)(_checked(original, "reference"))
    maps, measures = _randomized_maps(copy, chosen, mode, seed, explain, x, target,
                                      lambda step: _measure(reference, step))
    return ModelRandomization(mode, name, chosen, original, maps,
                              *(np.stack([m[key] for m in measures]) for key in MEASURES))


def data_randomization(model, random_model, x, target, method, options=None,
                       batch_size=BATCH_SIZE) -> DataRandomization:
    """Adebayo et al.'s data randomization test: the maps of ``model`` and of ``random_model``,
    the same architecture trained on permuted labels (``models.load("cnn_random_labels")``, or
    :func:`train_on_permuted_labels`), compared image by image (module docstring). ``method``
    and ``options`` as in :func:`model_randomization`.

    >>> d = data_randomization(model, models.load("cnn_random_labels"), eights[:8], 8,
    ...                        "guided_backprop")
    >>> d.spearman_abs.mean()
    """
    import keras

    if not isinstance(random_model, keras.Model):
        raise TypeError(f"random_model must be a keras.Model trained on permuted labels, e.g. "
                        f"models.load('cnn_random_labels'), got {type(random_model).__name__}")
    if _graph.input_shape(random_model) != _graph.input_shape(model):
        raise ValueError(f"random_model takes images of shape {_graph.input_shape(random_model)}"
                         f" but model {_graph.input_shape(model)}: give the same architecture")
    x, _ = _graph.check_images(model, x)
    name, explain = _method(method, options, _checks.batch_size(batch_size))
    original, maps = explain(model, x, target), explain(random_model, x, target)
    return DataRandomization(name, original, maps,
                             **similarities(original, maps))


def train_on_permuted_labels(name: str, x_train, y_train, epochs=None, seed: int = 0):
    """Model ``name`` (a course model, ``models.MODELS``) trained by the package's seeded trainer
    on ``x_train`` with the labels permuted by ``seed`` (``models.permuted_labels``): the model
    of the data randomization test. Memorizing random labels takes many epochs (the shipped
    "cnn_random_labels" had 80 on 4,000 digits).

    >>> random_model = train_on_permuted_labels("cnn", x_train[:500], y_train[:500], epochs=30)
    """
    from . import models

    labels = models.permuted_labels(_checks.labels_of(y_train, "y_train"), seed)
    return models.fit(name, _checks.array_of(x_train, "x_train"), labels, epochs=epochs,
                      seed=seed)
