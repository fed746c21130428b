r"""CRAFT: concepts discovered without examples (Fel et al., CVPR 2023).

TCAV needs the concept given by examples; CRAFT finds the concepts a layer uses for a set of
images (e.g. the test 8s) by itself:

1. **crops**: every image of x is cut into crops of ``crop`` x ``crop`` pixels, every
   ``stride`` pixels, each resized (bilinear) to the model's input size: a crop shows a part of
   a digit large enough for the layer to see it;
2. **activations**: each crop's activations at layer l, averaged over the map's locations:
   a (n_crops, K) matrix A, non-negative after a ReLU;
3. **NMF**: :math:`A \approx U W` with :math:`U \geq 0` (n_crops, c) and :math:`W \geq 0`
   (c, K) (scikit-learn's NMF, seeded): the c rows of W are the **concept bank**, each a
   direction in the layer's channels; :math:`U_{j,i}` says how much of concept i crop j holds.
   The relative error :math:`\|A - UW\|_F / \|A\|_F` is reported;
4. **concept maps** (:meth:`Craft.transform`): for a whole image, the activations at every
   location idx, :math:`\y_{(l),idx} \approx u_{idx} W`, solved for :math:`u_{idx} \geq 0` with
   W fixed: (N, h, w, c), where each concept is in each image;
5. **top crops** (:meth:`Craft.top_crops`): the crops with the largest :math:`U_{:,i}`, the
   examples that show what concept i is;
6. **importance** (:meth:`Craft.importance`, :mod:`.importance`): how much the target depends
   on each concept, by Sobol total indices over masks on the concept coefficients.

Example
-------
>>> bank = craft(model, x_eights, "conv3", n_concepts=5, crop=14)
>>> bank.reconstruction_error                  # e.g. 0.3
>>> maps = bank.transform(x_eights)            # (N, 7, 7, 5)
>>> best = bank.top_crops(0, count=9)          # indices into bank.crops
>>> ranked = bank.importance(x_eights, Feature("logits", 8))
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from .. import _checks, _graph, features
from .._checks import BATCH_SIZE

MAX_ITER = 500                  # NMF iterations (scikit-learn's coordinate descent)


@dataclass(frozen=True, eq=False)
class Craft:
    """A concept bank found by CRAFT at one layer, with the crops it was found on.

    layer                : the layer l (path name)
    bank                 : (c, K) float32 >= 0: the concepts, each a direction in the channels
    crops                : (n_crops, H, W, C) the crops, resized to the input size
    crop_origins         : (n_crops, 3) int64: the image of x each crop comes from, and its top
                           row and left column there
    crop_coefficients    : (n_crops, c) float32 >= 0: how much of each concept each crop holds
    reconstruction_error : :math:`\\|A - UW\\|_F / \\|A\\|_F` on the crops' activations
    settings             : crop, stride, seed, max_iter
    model                : the model (not part of the result's value)
    """

    layer: str
    bank: np.ndarray
    crops: np.ndarray
    crop_origins: np.ndarray
    crop_coefficients: np.ndarray
    reconstruction_error: float
    settings: dict
    model: object = field(repr=False)

    @property
    def n_concepts(self) -> int:
        return len(self.bank)

    def __repr__(self) -> str:
        return (f"Craft({self.n_concepts} concepts at {self.layer!r} from {len(self.crops)} "
                f"crops, reconstruction error {self.reconstruction_error:.2f})")

    def transform(self, x, batch_size=BATCH_SIZE) -> np.ndarray:
        """Concept maps of images x: (N, h, w, c) float32 >= 0, the coefficients u_idx of every
        location with the bank fixed (module docstring, step 4).

        >>> bank.transform(x_test[:4]).shape          # (4, 7, 7, 5) at conv3"""
        a = layer_activations(self.model, x, self.layer, batch_size)
        u = coefficients(a.reshape(-1, a.shape[-1]), self.bank, self.settings["max_iter"])
        return u.reshape(a.shape[:-1] + (self.n_concepts,))

    def top_crops(self, concept: int, count: int = 9) -> np.ndarray:
        """Indices into ``crops`` of the ``count`` crops holding the most of ``concept`` (highest
        coefficient first; ties: the lower index).

        >>> bank.crops[bank.top_crops(0)]              # the 9 crops that show concept 0"""
        if not _checks.is_int(concept) or not 0 <= concept < self.n_concepts:
            raise ValueError(f"concept must be an int from 0 to {self.n_concepts - 1}, got "
                             f"{concept!r}")
        count = _checks.top_count(count, len(self.crops), "the crops")
        return np.argsort(-self.crop_coefficients[:, concept], kind="stable")[:count]

    def importance(self, x, target, n_designs: int = 32, seed: int = 0,
                   batch_size=BATCH_SIZE):
        """The Sobol total index of each concept for ``target`` on images x
        (:func:`cnn_helper.concepts.importance.importance`)."""
        from .importance import importance

        return importance(self, x, target, n_designs, seed, batch_size)


def layer_activations(model, x, layer: str, batch_size=BATCH_SIZE) -> np.ndarray:
    """The activations (N, *spatial, K) of ``layer`` on images x, checked: the layer has a map
    (spatial axes and channels) and no negative value (NMF needs a layer after a ReLU)."""
    shape = _graph.output_shape(model, layer)
    if len(shape) < 2:
        raise ValueError(f"CRAFT needs a layer with maps (spatial axes and channels); layer "
                         f"{layer!r} has output shape {tuple(shape)}: choose a convolution, "
                         "e.g. the last one before the head")
    a = features.activations(model, x, [layer], batch_size)[layer]
    if a.ndim == len(shape):                                  # one image given
        a = a[None]
    if np.min(a) < 0:
        raise ValueError(f"layer {layer!r} has negative activations (min {np.min(a):.3g}): "
                         "non-negative matrix factorization needs values >= 0; choose a layer "
                         "after a ReLU (a convolution with activation='relu', or its pooling)")
    return a


def _nmf():
    """scikit-learn's NMF tools, or an ImportError saying how to install them."""
    try:
        from sklearn import decomposition
    except ImportError as error:
        raise ImportError("CRAFT factorizes activations with scikit-learn's NMF: pip install "
                          "scikit-learn") from error
    return decomposition


def coefficients(a, bank, max_iter: int = MAX_ITER) -> np.ndarray:
    """U >= 0 (n, c) with a ~ U bank for rows a (n, K), the bank fixed: how much of each concept
    each row holds. Coordinate descent for exactly ``max_iter`` rounds (no stopping rule: the
    rows are solved independently, so a row's coefficients do not depend on the other rows).

    >>> coefficients(np.array([[2.0, 0.0]]), np.array([[1.0, 0.0], [0.0, 1.0]]))  # [[2, 0]]"""
    bank = np.asarray(bank, np.float64)
    with warnings.catch_warnings():      # every round is run: no stopping rule to warn about
        warnings.filterwarnings("ignore", message="Maximum number of iterations")
        u, _, _ = _nmf().non_negative_factorization(
            np.asarray(a, np.float64), H=bank, n_components=len(bank), update_H=False,
            solver="cd", max_iter=max_iter, tol=0.0)
    return u.astype(np.float32)


def crops_of(x, crop: int, stride: int) -> tuple:
    """Every crop x crop window of the images x (N, H, W, C), every ``stride`` pixels, resized
    (bilinear) to (H, W): (crops (n, H, W, C) float32, origins (n, 3): image, row, column)."""
    from keras import ops

    n, h, w = x.shape[:3]
    if not _checks.is_int(crop) or not 2 <= crop <= min(h, w):
        raise ValueError(f"crop must be an int from 2 to the image side {min(h, w)}, got "
                         f"{crop!r}")
    stride = _checks.positive_int(stride, "stride")
    corners = [(r, c) for r in range(0, h - crop + 1, stride)
               for c in range(0, w - crop + 1, stride)]
    windows = np.stack([x[:, r:r + crop, c:c + crop] for r, c in corners], axis=1)
    windows = windows.reshape((-1, crop, crop) + x.shape[3:]).astype(np.float32)
    resized = ops.convert_to_numpy(ops.image.resize(windows, (h, w)))
    origins = np.array([(i, r, c) for i in range(n) for r, c in corners], np.int64)
    return resized, origins


def factorize(a, n_concepts: int, seed: int, max_iter: int = MAX_ITER) -> tuple:
    """NMF of rows a (n, K) >= 0: (U (n, c), W (c, K), relative error), seeded
    (scikit-learn's NMF, "nndsvda" start, coordinate descent)."""
    a = np.asarray(a, np.float64)
    nmf = _nmf().NMF(n_components=n_concepts, init="nndsvda", solver="cd", max_iter=max_iter,
                     random_state=seed)
    with warnings.catch_warnings():      # "maximum number of iterations": the error says how well
        warnings.filterwarnings("ignore", message="Maximum number of iterations")
        u = nmf.fit_transform(a)
    w = nmf.components_
    error = np.linalg.norm(a - u @ w) / (np.linalg.norm(a) or 1.0)
    return u.astype(np.float32), w.astype(np.float32), float(error)


def craft(model, x, layer, n_concepts: int = 5, crop=None, stride=None, seed: int = 0,
          max_iter: int = MAX_ITER, batch_size=BATCH_SIZE) -> Craft:
    """The concept bank of ``layer`` for images x (module docstring): crops, their activations,
    NMF.

    x          : (N, H, W, C) the images whose concepts are looked for (e.g. one class)
    layer      : a layer with maps and non-negative values (after a ReLU)
    n_concepts : c, the number of concepts;  seed : NMF's seed;  max_iter : its iterations
    crop       : the crops' side in pixels (default: half the image's smaller side)
    stride     : pixels between crops (default: half the crop: crops overlap by half)
    batch_size : images per forward pass; never changes the result

    >>> bank = craft(model, x_test[y_test == 8][:100], "conv3", n_concepts=5)
    """
    name = _graph.path_name(model, layer)
    x, _ = _graph.check_images(model, x)
    n_concepts, seed = _checks.positive_int(n_concepts, "n_concepts"), _checks.seed(seed)
    crop = min(x.shape[1:3]) // 2 if crop is None else crop
    stride = max(1, crop // 2) if stride is None else stride
    crops, origins = crops_of(x, crop, stride)
    if n_concepts > min(len(crops), _graph.output_shape(model, name)[-1]):
        raise ValueError(f"n_concepts={n_concepts} is more than the {len(crops)} crops or the "
                         f"{_graph.output_shape(model, name)[-1]} channels of layer {name!r}: "
                         "give more images or fewer concepts")
    a = layer_activations(model, crops, name, batch_size)
    a = a.mean(axis=tuple(range(1, a.ndim - 1)))                          # (n_crops, K)
    u, w, error = factorize(a, n_concepts, seed, _checks.positive_int(max_iter, "max_iter"))
    settings = dict(crop=int(crop), stride=int(stride), seed=seed, max_iter=int(max_iter))
    return Craft(name, w, crops, origins, u, error, settings, model)
