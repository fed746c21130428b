"""Checking that nothing changed a user's model: a copy of its weights, compared later.

(Not in conftest.py: notebooks/conftest.py is imported under the same module name.)
"""
import numpy as np


def weights_of(model):
    """A copy of every weight array of ``model``, to check later that nothing changed it."""
    return [np.array(w, copy=True) for w in model.get_weights()]


def same_weights(a, b) -> bool:
    """Whether two lists of weight arrays (``weights_of``) are equal, shape and value."""
    return len(a) == len(b) and all(x.shape == y.shape and np.array_equal(x, y)
                                    for x, y in zip(a, b))
