r"""CRAFT as an attribution method: the registry's "craft" (:mod:`cnn_helper.methods`).

An attribution method answers for each image with one map, whatever other images come with it.
CRAFT's answer is a concept map (:meth:`Craft.transform`): here, for each image, the map of the
concept that matters most for the target on that image (its largest Sobol total index,
:mod:`.importance`). The concepts come from a bank: the one given (``bank=``, found by
``craft`` on a set of images, e.g. the class), or by default one found on the crops of that
image alone, so that an image's map never depends on the other images of the call.

Example
-------
>>> maps = craft_attribution(model, x_test[y_test == 8][:8], 8)      # (8, 28, 28, 1)
>>> bank = craft(model, x_eights, "conv3", n_concepts=5)
>>> maps = methods.get("craft")(model, x_eights[:8], 8, bank=bank)  # the class's concepts
"""
from __future__ import annotations

import numpy as np

from .. import _graph, cam
from .._checks import BATCH_SIZE
from .discovery import craft
from .importance import importance

DEFAULT_CONCEPTS = 3            # concepts of an image's own bank (at most its crops, channels)


def _own_bank(model, image, layer, n_concepts, crop, seed, batch_size):
    """The bank found on the crops of one image (n_concepts: at most its crops and channels)."""
    side = min(image.shape[:2])
    crop = side // 2 if crop is None else crop
    per_axis = (side - crop) // max(1, crop // 2) + 1
    n_channels = _graph.output_shape(model, layer)[-1]
    n_concepts = min(DEFAULT_CONCEPTS, per_axis ** 2, n_channels) if n_concepts is None \
        else n_concepts
    return craft(model, image[None], layer, n_concepts, crop, seed=seed, batch_size=batch_size)


def craft_attribution(model, x, target, layer=None, n_concepts=None, crop=None, bank=None,
                      n_designs: int = 32, seed: int = 0, batch_size=BATCH_SIZE):
    """CRAFT's concept map of each image's most important concept for ``target`` (module
    docstring), bilinearly upsampled to the input size: (N, H, W, 1) float32 >= 0, (H, W, 1)
    for one image.

    bank       : a ``Craft`` to take the concepts from; None: each image's own bank, of
                 ``n_concepts`` (default: 3, or fewer when the image has fewer crops or the
                 layer fewer channels), crops of side ``crop`` (default: half the image)
    layer      : the own banks' layer; default: the last layer with a map before the target
                 (``cam.cam_layer``)
    n_designs  : Sobol designs per image;  seed : the banks' and designs' seed

    >>> maps = craft_attribution(model, x_test[y_test == 8][:8], 8)    # (8, 28, 28, 1)
    """
    from keras import ops

    images, single = _graph.check_images(model, x)
    layer = cam.cam_layer(model, target) if layer is None else layer
    maps = []
    for image in images:
        own = bank if bank is not None else _own_bank(model, image, layer, n_concepts, crop, seed,
                                                      batch_size)
        ranked = importance(own, image[None], target, n_designs, seed, batch_size)
        best = int(np.argmax(ranked.per_image[0]))
        maps.append(own.transform(image[None], batch_size)[0, ..., best:best + 1])
    up = ops.image.resize(np.stack(maps), images.shape[1:3])
    up = ops.convert_to_numpy(up).astype(np.float32)
    return up[0] if single else up
