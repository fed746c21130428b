r"""Concept activation vectors (Kim et al., ICML 2018, "TCAV").

A concept C is given by examples (images that show it) and set against random images. At a
layer l, each image becomes a vector :math:`a = \y_{(l)}(\x)`: the layer's activations
flattened (``pool=None``, Kim et al.'s choice: a direction may differ from place to place in
the map) or averaged over the map's locations (``pool="mean"``: one weight per channel k, the
same direction at every location idx). A linear classifier separates the two sets,

.. math::  p(\text{concept} \mid a) = \sigma(w \cdot a + b),

fitted by L2-regularised logistic regression (:func:`fit_linear`); the CAV is the unit normal of
its boundary, :math:`v_C^l = w / \|w\|`, pointing towards the concept. Its accuracy on held-out
examples (a seeded split, ``test_fraction`` of each set) says whether the layer separates the
concept from random images at all: a CAV near 0.5 accuracy points nowhere in particular.

Example
-------
>>> loops = concept_sets.concept_images("loop", 60)
>>> v = cav(model, "conv3", loops, concept_sets.random_images(60))
>>> v.accuracy, v.direction.shape                # e.g. 0.97, (3136,): conv3 is 7x7x64
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _checks, _graph, features
from .._checks import BATCH_SIZE

POOLS = (None, "mean")
MIN_EXAMPLES = 10               # concept or random images a CAV needs, at least
L2 = 0.001                      # the logistic regression's weight decay, on scaled activations
STEPS = 500                     # gradient steps of the logistic regression


@dataclass(frozen=True)
class CAV:
    """A concept activation vector: the unit normal of a linear boundary between the layer's
    activations of concept examples and of random ones.

    layer          : the layer l (its path name)
    direction      : (d,) float32, unit length, pointing towards the concept: the activations
                     flattened (d = the layer's size) or, for ``pool="mean"``, one per channel
    pool           : None (flattened activations) or "mean" (averaged over the locations idx)
    shape          : the layer's output shape (no batch axis)
    accuracy       : the classifier's accuracy on the held-out examples
    train_accuracy : its accuracy on the examples it was fitted to
    n_concept      : concept examples used;  n_random : random examples used
    """

    layer: str
    direction: np.ndarray
    pool: object
    shape: tuple
    accuracy: float
    train_accuracy: float
    n_concept: int
    n_random: int

    def __repr__(self) -> str:
        return (f"CAV(layer {self.layer!r}, {self.direction.size} values"
                f"{' (mean-pooled)' if self.pool else ''}, held-out accuracy "
                f"{self.accuracy:.2f}, {self.n_concept} concept / {self.n_random} random)")


def check_pool(pool):
    """``pool`` checked: None (flattened activations) or "mean"."""
    if pool not in POOLS:
        raise ValueError(f"pool {pool!r} is not one of {POOLS}: None (the activations "
                         "flattened, as Kim et al.) or 'mean' (averaged over the locations)")
    return pool


def check_examples(model, images, name: str) -> np.ndarray:
    """Concept or random examples checked against the model (shape, dtype) and counted."""
    images, _ = _graph.check_images(model, images, name)
    if len(images) < MIN_EXAMPLES:
        raise ValueError(f"{name} holds {len(images)} images; a CAV needs at least "
                         f"{MIN_EXAMPLES} examples of each set (a few dozen is usual)")
    return images


def vectors(model, images, layers, pool, batch_size=BATCH_SIZE) -> dict:
    """{layer: (N, d) float64}: each image's activations at each layer as a vector, flattened
    or mean-pooled (``pool``), from ONE forward pass to every layer.

    >>> vectors(model, x_test[:4], ["conv2", "conv3"], None)["conv3"].shape     # (4, 3136)"""
    found = features.activations(model, images, layers, batch_size)
    out = {}
    for name, a in found.items():
        if pool == "mean":
            if a.ndim < 3:
                raise ValueError(f"pool='mean' averages a map over its locations, but layer "
                                 f"{name!r} has output shape {a.shape[1:]} (no spatial axes): "
                                 "use pool=None")
            a = a.mean(axis=tuple(range(1, a.ndim - 1)))
        out[name] = a.reshape(len(a), -1).astype(np.float64)
    return out


def centred_gram(gram) -> tuple:
    """The Gram matrix (n, n) of rows a made that of (a - mean) / scale, and the scale: the
    rows' root mean squared norm once centred (so the descent's steps fit any layer)."""
    row = gram.mean(axis=1)
    centred = gram - row[:, None] - row[None, :] + row.mean()
    scale = np.sqrt(max(np.trace(centred) / len(gram), 0.0)) or 1.0
    return centred / scale ** 2, scale


def descend(gram, y, l2: float = L2, steps: int = STEPS):
    """Logistic regression in the span of the rows, for R problems at once: gram (R, n, n)
    centred and scaled, labels y (R, n) -> (alpha (R, n), b (R,)). Nesterov's accelerated
    gradient with the step 1/L, L = 1/4 + 1/4 + l2 a bound of the loss's curvature: the
    logistic loss's second derivative is at most 1/4, and the scaled Gram matrix's largest
    eigenvalue at most its trace, n (hence 1/4 for the n coefficients, 1/4 for b)."""
    n = y.shape[1]
    rate = 1.0 / (0.5 + l2)
    alpha = previous = np.zeros((len(y), n + 1))              # the n coefficients, then b
    for t in range(1, steps + 1):
        look = alpha + (t - 2) / (t + 1) * (alpha - previous)           # the look-ahead
        z = np.matmul(gram, look[:, :-1, None])[..., 0] + look[:, -1:]
        r = 1 / (1 + np.exp(-z)) - y                                     # dLoss/dz_i
        gradient = np.concatenate([r / n + l2 * look[:, :-1], r.mean(axis=1, keepdims=True)],
                                  axis=1)
        previous, alpha = alpha, look - rate * gradient
    return alpha[:, :-1], alpha[:, -1]


def fit_linear(a, y, l2: float = L2, steps: int = STEPS):
    r"""L2-regularised logistic regression by accelerated gradient descent: (w (d,), b)
    minimising

    .. math::  \frac{1}{n}\sum_i \log(1 + e^{-(2y_i - 1)(w \cdot a_i + b)}) + \frac{\lambda}{2}
               \|w\|^2

    on a (n, d) centred and scaled so that the rows' mean squared norm is 1. Started at w = 0,
    every gradient :math:`\frac{1}{n}\sum_i r_i a_i + \lambda w` is a combination of the rows,
    so :math:`w = a^T \alpha` and the descent (:func:`descend`) runs on the n coefficients
    :math:`\alpha` with the n x n Gram matrix :math:`K = a a^T`: the same steps, cheap for a
    layer of thousands of values. Deterministic: no seed.

    >>> w, b = fit_linear(np.array([[0., 1.], [1., 0.]]), np.array([1, 0]))   # w[1] > w[0]"""
    a, y = np.asarray(a, np.float64), np.asarray(y, np.float64)
    gram, scale = centred_gram(a @ a.T)
    alpha, b = descend(gram[None], y[None], l2, steps)
    centre = a.mean(axis=0)
    w = (a - centre).T @ alpha[0] / scale
    return w, b[0] - float(w @ centre)


def split(n: int, test_fraction: float, rng) -> tuple:
    """(train indices, test indices) of n examples: a seeded shuffle, ``test_fraction`` of them
    (at least 1) held out."""
    order = rng.permutation(n)
    n_test = max(1, int(round(test_fraction * n)))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def accuracy(a, y, w, b) -> float:
    """The share of rows of a whose side of the boundary (w, b) is their label y."""
    return float(np.mean(((a @ w + b) > 0) == (np.asarray(y) == 1))) if len(a) else float("nan")


def _split_pair(concept_rows, random_rows, seed, test_fraction: float) -> tuple:
    """(train rows, their labels, held-out rows, their labels) of one CAV: each set split by
    ``seed``."""
    rng = np.random.default_rng(seed)
    (c_train, c_test), (r_train, r_test) = (split(len(rows), test_fraction, rng)
                                            for rows in (concept_rows, random_rows))
    return (np.r_[concept_rows[c_train], random_rows[r_train]],
            np.r_[np.ones(len(c_train)), np.zeros(len(r_train))],
            np.r_[concept_rows[c_test], random_rows[r_test]],
            np.r_[np.ones(len(c_test)), np.zeros(len(r_test))])


def cavs_of_vectors(layer: str, shape: tuple, pool, every, pairs: list, seeds: list,
                    test_fraction: float, l2: float = L2) -> list:
    r"""One CAV per pair (concept rows, random rows) of ``every`` (N, d): each set split into
    train and held-out rows by its seed, the classifiers fitted together (one Gram matrix of
    ``every``, one batched descent per size of training set: :func:`descend`). Each w is
    :math:`(a - \bar a)^T \alpha = a^T (\alpha - \bar\alpha)` over its train rows a: all the
    w come from one product with ``every``, and so do every row's decision values."""
    gram_all = every @ every.T
    splits = [_split_pair(c, r, seed, test_fraction) for (c, r), seed in zip(pairs, seeds)]
    coefficients, biases = np.zeros((len(every), len(splits))), np.zeros(len(splits))
    for n in sorted({len(train) for train, *_ in splits}):
        mine = [i for i, (train, *_) in enumerate(splits) if len(train) == n]
        grams, scales = zip(*(centred_gram(gram_all[np.ix_(splits[i][0], splits[i][0])])
                              for i in mine))
        alphas, bs = descend(np.stack(grams), np.stack([splits[i][1] for i in mine]), l2)
        for i, alpha, b, scale in zip(mine, alphas, bs, scales):
            # an image in both sets of a random pair is two rows: add, do not overwrite
            np.add.at(coefficients[:, i], splits[i][0], (alpha - alpha.mean()) / scale)
            biases[i] = b
    w = every.T @ coefficients                                      # (d, R)
    z = every @ w                                                   # (N, R): w . a of each row
    return [_cav(layer, shape, pool, w[:, i], biases[i] - z[split_[0], i].mean(), z[:, i],
                 split_, pair) for i, (split_, pair) in enumerate(zip(splits, pairs))]


def _cav(layer, shape, pool, w, b, z, split_: tuple, pair) -> CAV:
    """The CAV of a fitted boundary (w, b) with its accuracies on the train and held-out rows
    (z: w . a of every row)."""
    train, y_train, test, y_test = split_
    norm = np.linalg.norm(w)
    if norm == 0:
        raise ValueError(f"the concept and random activations at layer {layer!r} are the same "
                         "(every value equal): no direction separates them; choose another layer")
    accuracies = [float(np.mean((z[rows] + b > 0) == (y == 1))) for rows, y in
                  ((test, y_test), (train, y_train))]
    return CAV(layer, (w / norm).astype(np.float32), pool, shape, *accuracies,
               len(pair[0]), len(pair[1]))


def cav(model, layer, concept, random, seed: int = 0, pool=None, test_fraction: float = 0.25,
        l2: float = L2, batch_size=BATCH_SIZE) -> CAV:
    r"""The concept activation vector :math:`v_C^l` of ``concept`` images against ``random``
    images at ``layer`` (module docstring): a linear classifier on the layer's activations,
    its held-out accuracy reported.

    concept, random : (N, H, W, C) images in the model's input range, at least ``MIN_EXAMPLES``
                      each (e.g. ``concept_sets.concept_images``, ``concept_sets.random_images``)
    pool            : None (the activations flattened, Kim et al.) or "mean" (over locations)
    seed            : the train / held-out split;  test_fraction : the share held out
    l2              : the weight decay :math:`\lambda` of the logistic regression
    batch_size      : images per forward pass; never changes the result

    >>> v = cav(model, "conv3", concept_sets.concept_images("loop", 60),
    ...         concept_sets.random_images(60))
    """
    pool, seed = check_pool(pool), _checks.seed(seed)
    if not _checks.is_number(test_fraction) or not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be a number between 0 and 1, got {test_fraction!r}")
    concept = check_examples(model, concept, "concept")
    random = check_examples(model, random, "random")
    name = _graph.path_name(model, layer)
    found = vectors(model, np.concatenate([concept, random]), [name], pool, batch_size)[name]
    pair = (np.arange(len(concept)), len(concept) + np.arange(len(random)))
    return cavs_of_vectors(name, tuple(_graph.output_shape(model, name)), pool, found, [pair],
                           [[seed]], float(test_fraction), _checks.non_negative(l2, "l2"))[0]
