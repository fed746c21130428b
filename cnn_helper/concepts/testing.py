r"""Testing with concept activation vectors, TCAV (Kim et al., ICML 2018).

Does the target s (a class :math:`\y_{(L),k}` or any ``Feature``) rise when the activations of
layer l move towards concept C? The directional derivative of s along the CAV :math:`v_C^l`
(:mod:`cnn_helper.concepts.vectors`) answers it for one image:

.. math::  S_{C,l}(\x) = \nabla_{\y_{(l)}} s(\x) \cdot v_C^l

(for a mean-pooled CAV the same direction is added at every location idx, so the gradient is
summed over idx first). The TCAV score is the share of the images x whose derivative is
positive, :math:`\text{TCAV}_{C,l} = |\{\x : S_{C,l}(\x) > 0\}| / |x|`.

A CAV fitted against one random set may point anywhere, so the score is computed for
``n_runs`` CAVs, each against another random set, and compared with the scores of random CAVs
(one random set against another): a two-sided t-test between the two lists of scores gives the
p-value. A concept is significant when p < alpha / m, with m the number of (concept, layer)
pairs tested in the call (Bonferroni). The gradient :math:`\nabla_{\y_{(l)}} s` is computed ONCE
per image and layer (the package's gradient step, ``_gradient``) and multiplied by every CAV of
that layer at once.

Example
-------
>>> result = tcav(model, x_nines, Feature("logits", 9), "loop", "conv3")
>>> result.score, result.p_value, result.significant     # e.g. 0.93, 1e-12, True
>>> results = tcav(model, x_nines, Feature("logits", 9), ["loop", "vertical_bar"],
...                ["conv2", "conv3"])                   # {("loop", "conv2"): TCAV, ...}
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .. import _checks, _gradient, _graph
from .._checks import BATCH_SIZE
from . import concept_sets
from . import vectors as cav_mod

CONCEPT_SET_SIZE = 50           # drawn examples per concept given by name


@dataclass(frozen=True)
class ConceptCAVs:
    """The CAVs a TCAV test uses, fitted once (:func:`concept_cavs`): they score any images and
    targets (``tcav(model, x, target, cavs)``), e.g. the images of each class in turn.

    concepts    : the concepts' names;  layers : the layers' path names
    cavs        : {(concept, layer): n_runs CAVs, each against another random set}
    random_cavs : {layer: n_runs random CAVs, random set r - 1 against random set r}
    pool        : None (flattened activations) or "mean";  seed : the call's seed
    """

    concepts: tuple
    layers: tuple
    cavs: dict
    random_cavs: dict
    pool: object
    seed: int

    @property
    def n_runs(self) -> int:
        return len(next(iter(self.random_cavs.values())))

    def __repr__(self) -> str:
        return (f"ConceptCAVs({list(self.concepts)} at {list(self.layers)}, {self.n_runs} runs, "
                f"mean held-out accuracy {self.accuracy():.2f})")

    def accuracy(self) -> float:
        """The mean held-out accuracy of the concept CAVs."""
        return float(np.mean([v.accuracy for runs in self.cavs.values() for v in runs]))


@dataclass(frozen=True)
class TCAV:
    """The TCAV test of one concept at one layer for one target.

    concept            : the concept's name;  layer : the layer l;  target : the target, as text
    score              : the mean of ``scores``: the share of images whose target rises along
                         the concept's CAV
    scores             : (n_runs,) the score with each CAV (each against another random set)
    random_scores      : (n_runs,) the score with each random CAV (random set r - 1 against
                         random set r: each pair its own, so the random scores are not all tied
                         to one set)
    p_value            : the two-sided t-test of scores against random_scores
    significant        : p_value < alpha / tests (Bonferroni over the (concept, layer) pairs of
                         the call)
    alpha, tests       : the level and the number of pairs tested together
    accuracies         : (n_runs,) held-out accuracy of each concept CAV
    random_accuracies  : (n_runs,) held-out accuracy of each random CAV
    n_images           : how many images x the scores count
    directions         : (n_runs, d) the concept CAVs (unit vectors, ``CAV.direction``)
    """

    concept: str
    layer: str
    target: str
    score: float
    scores: np.ndarray
    random_scores: np.ndarray
    p_value: float
    significant: bool
    alpha: float
    tests: int
    accuracies: np.ndarray
    random_accuracies: np.ndarray
    n_images: int
    directions: np.ndarray

    def __repr__(self) -> str:
        return (f"TCAV({self.concept!r} at {self.layer!r} for {self.target}: score "
                f"{self.score:.2f} vs random {np.mean(self.random_scores):.2f}, p = "
                f"{self.p_value:.2g}{', significant' if self.significant else ''}; CAV accuracy "
                f"{np.mean(self.accuracies):.2f})")


def t_test(scores, random_scores) -> float:
    """The two-sided p-value of Welch's t-test between two lists of scores (scipy.stats). Two
    constant lists have no variance: p = 1 when they are equal, 0 when they differ."""
    from scipy import stats

    scores, random_scores = np.asarray(scores), np.asarray(random_scores)
    if np.ptp(scores) == 0 and np.ptp(random_scores) == 0:
        return 1.0 if scores[0] == random_scores[0] else 0.0
    with warnings.catch_warnings():          # one constant list: "catastrophic cancellation"
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(scores, random_scores, equal_var=False).pvalue)


def _concepts(model, concept, seed: int) -> dict:
    """{name: images}: a name of ``concept_sets.CONCEPTS`` (drawn, ``CONCEPT_SET_SIZE`` of it),
    images (named "concept"), a list of names, or a dict {name: images or name}."""
    if isinstance(concept, dict):
        given = concept
    elif isinstance(concept, str):
        given = {concept: concept}
    elif isinstance(concept, (list, tuple)) and concept and all(isinstance(c, str)
                                                                for c in concept):
        given = {c: c for c in concept}
    else:
        given = {"concept": concept}
    if not given:
        raise ValueError("concept is empty; give a concept's images, its name or a dict of them")
    return {name: cav_mod.check_examples(
        model, concept_sets.concept_images(images, CONCEPT_SET_SIZE, seed)
        if isinstance(images, str) else images, f"concept {name!r}")
        for name, images in given.items()}


def _random_sets(model, random, n_runs: int, n_random: int, seed: int):
    """(the images of every random set, (n_runs + 1, n_random) indices into them): set r is
    drawn without replacement from ``random`` (default: the MNIST training split) with seed
    (seed, r); only the images some set uses are returned."""
    if random is None:
        from .. import data

        (random, _), _ = data.load_mnist(verbose=False)
    pool = _checks.array_of(random, "random")
    n_random = n_random if n_random is not None else min(len(pool), CONCEPT_SET_SIZE)
    if not _checks.is_int(n_random) or not cav_mod.MIN_EXAMPLES <= n_random <= len(pool):
        raise ValueError(f"n_random must be an int from {cav_mod.MIN_EXAMPLES} to the "
                         f"{len(pool)} images of random, got {n_random!r}")
    sets = np.stack([np.random.default_rng([seed, r]).choice(len(pool), n_random, replace=False)
                     for r in range(n_runs + 1)])
    used, where = np.unique(sets, return_inverse=True)
    images = cav_mod.check_examples(model, pool[used], "random")
    return images, where.reshape(sets.shape)


def _cavs(vectors, random_vectors, sets, layer, shape, pool, seed: int, test_fraction: float):
    """[concept CAVs of each concept (n_runs each)] and the random CAVs at one layer: CAV r of
    concept i is fitted against random set r, random CAV r sets random set r - 1 against it (the
    train / held-out splits seeded by (seed, r, i + 1) and (seed, r, 0)); every CAV of the layer
    is fitted in one go (``vectors.cavs_of_vectors``)."""
    every = np.concatenate(list(vectors.values()) + [random_vectors])
    start = np.cumsum([0] + [len(v) for v in vectors.values()])
    runs = range(1, len(sets))
    pairs = [(np.arange(start[i], start[i + 1]), start[-1] + sets[r])
             for i in range(len(vectors)) for r in runs]
    pairs += [(start[-1] + sets[r - 1], start[-1] + sets[r]) for r in runs]
    seeds = [[seed, r, i + 1] for i in range(len(vectors)) for r in runs]
    seeds += [[seed, r, 0] for r in runs]
    cavs = cav_mod.cavs_of_vectors(layer, shape, pool, every, pairs, seeds, test_fraction)
    n = len(runs)
    concept_cavs = {name: cavs[i * n:(i + 1) * n] for i, name in enumerate(vectors)}
    return concept_cavs, cavs[len(vectors) * n:]


def directional_derivatives(gradient, directions, pool) -> np.ndarray:
    r""":math:`\nabla_{\y_{(l)}} s \cdot v` of every image (N, ...) and every direction (m, d):
    (N, m). ``pool="mean"``: the gradient summed over the locations, then dotted with v (C,)."""
    g = np.asarray(gradient, np.float64)
    if pool == "mean":
        g = g.sum(axis=tuple(range(1, g.ndim - 1)))
    return g.reshape(len(g), -1) @ np.asarray(directions, np.float64).T


def _shares(gradient, cavs: list, pool) -> np.ndarray:
    """The TCAV score of each CAV: the share of images with a positive directional derivative."""
    derivatives = directional_derivatives(gradient, np.stack([c.direction for c in cavs]), pool)
    return (derivatives > 0).mean(axis=0)


def _layer_results(layer: str, cavs, gradient, request, test: tuple) -> dict:
    """{(concept, layer): TCAV} at one layer from the CAVs (a ``ConceptCAVs``) and the gradient
    of the target there; ``test`` = (alpha, number of tests)."""
    alpha, tests = test
    random_cavs = cavs.random_cavs[layer]
    random_scores, results = _shares(gradient, random_cavs, cavs.pool), {}
    for c in cavs.concepts:
        runs = cavs.cavs[c, layer]
        scores = _shares(gradient, runs, cavs.pool)
        p = t_test(scores, random_scores)
        results[c, layer] = TCAV(
            c, layer, str(request.feature), float(scores.mean()), scores, random_scores, p,
            bool(p < alpha / tests), alpha, tests, np.array([v.accuracy for v in runs]),
            np.array([v.accuracy for v in random_cavs]), len(request.x),
            np.stack([v.direction for v in runs]))
    return results


def _checked(n_runs, seed, alpha, pool, test_fraction) -> tuple:
    n_runs = _checks.positive_int(n_runs, "n_runs")
    if n_runs < 2:
        raise ValueError(f"n_runs must be at least 2 (a t-test needs several scores), got {n_runs}")
    if not _checks.is_number(alpha) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be a number between 0 and 1, got {alpha!r}")
    if not _checks.is_number(test_fraction) or not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be a number between 0 and 1, got {test_fraction!r}")
    return n_runs, _checks.seed(seed), float(alpha), cav_mod.check_pool(pool), float(test_fraction)


def concept_cavs(model, concept, layer, random=None, n_runs: int = 20, seed: int = 0,
                 pool=None, n_random=None, test_fraction: float = 0.25,
                 batch_size=BATCH_SIZE) -> ConceptCAVs:
    """The CAVs of TCAV's test (module docstring), fitted once: ``n_runs`` CAVs of each concept
    at each layer, each against another random set, and as many random CAVs; the activations of
    every concept and random image come from ONE forward pass. Arguments as in :func:`tcav`.

    >>> cavs = concept_cavs(model, "loop", ["conv2", "conv3"], n_runs=10)
    >>> {k: tcav(model, x_test[y_test == k], Feature("logits", k), cavs) for k in range(10)}
    """
    n_runs, seed, _, pool, test_fraction = _checked(n_runs, seed, 0.05, pool, test_fraction)
    concepts = _concepts(model, concept, seed)
    layers = tuple(_graph.path_name(model, a) for a in _checks.layer_list(layer))
    random_images, sets = _random_sets(model, random, n_runs, n_random, seed)
    sizes = np.cumsum([0] + [len(images) for images in concepts.values()])
    every = cav_mod.vectors(model, np.concatenate(list(concepts.values()) + [random_images]),
                            layers, pool, batch_size)                      # one forward pass
    cavs, random_cavs = {}, {}
    for name in layers:
        vectors = {c: every[name][sizes[i]:sizes[i + 1]] for i, c in enumerate(concepts)}
        by_concept, random_cavs[name] = _cavs(vectors, every[name][sizes[-1]:], sets, name,
                                              tuple(_graph.output_shape(model, name)), pool,
                                              seed, test_fraction)
        cavs.update({(c, name): tuple(runs) for c, runs in by_concept.items()})
        random_cavs[name] = tuple(random_cavs[name])
    return ConceptCAVs(tuple(concepts), layers, cavs, random_cavs, pool, seed)


def tcav(model, x, target, concept, layer=None, random=None, n_runs: int = 20, seed: int = 0,
         alpha: float = 0.05, pool=None, n_random=None, test_fraction: float = 0.25,
         batch_size=BATCH_SIZE):
    r"""TCAV scores of concepts at layers for ``target`` on images ``x``, with the random-CAV
    test (module docstring).

    x         : (N, H, W, C) the images whose target is explained (e.g. the test 9s)
    target    : a head class (int) or a ``Feature``; for a class prefer the logit,
                ``Feature("logits", k)``: a softmax output also rises when other classes fall
    concept   : a concept's images (N, H, W, C), the name of a drawn concept set
                (``concept_sets.CONCEPTS``, ``CONCEPT_SET_SIZE`` images), a list of names, a
                dict {name: images or set name}; or CAVs fitted before (``concept_cavs``: then
                ``layer`` (default: all of theirs) picks among their layers, and the options
                that fit CAVs are theirs)
    layer     : a layer, or a list of layers
    random    : images to draw the random sets from (default: the MNIST training split)
    n_runs    : CAVs per concept and layer, each against another random set; as many random CAVs
    n_random  : images per random set (default: 50, or all of ``random`` when fewer)
    seed      : the random sets, the train / held-out splits;  alpha : the test's level
    pool      : None (flattened activations) or "mean": see ``cav``
    batch_size: images per pass; never changes the result

    Returns a ``TCAV`` for one concept at one layer, else {(concept name, layer): TCAV}.

    >>> r = tcav(model, nines, Feature("logits", 9), "loop", "conv3", n_runs=10)
    """
    alpha = _checked(n_runs, seed, alpha, pool, test_fraction)[2]
    if isinstance(concept, ConceptCAVs):
        cavs = concept
        layers = cavs.layers if layer is None else \
            tuple(_graph.path_name(model, a) for a in _checks.layer_list(layer))
        if set(layers) - set(cavs.layers):
            raise ValueError(f"layers {sorted(set(layers) - set(cavs.layers))} have no CAVs in "
                             f"{cavs!r}; choose among {list(cavs.layers)}")
    elif layer is None:
        raise ValueError("give the layer(s) to test the concept at, e.g. layer='conv3'")
    else:
        cavs = concept_cavs(model, concept, layer, random, n_runs, seed, pool, n_random,
                            test_fraction, batch_size)
        layers = cavs.layers
    request = _gradient.request(model, x, target, batch_size)
    results, tests = {}, len(cavs.concepts) * len(layers)
    for name in layers:
        _, gradient = _gradient.gradients(model, request, request.x, wrt=name)   # once per layer
        results.update(_layer_results(name, cavs, gradient, request, (alpha, tests)))
    return next(iter(results.values())) if len(results) == 1 else results
