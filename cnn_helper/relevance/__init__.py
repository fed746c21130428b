r"""Relevance propagation: LRP rules and composites (:func:`lrp`), DeepLIFT (:func:`deeplift`).

Both change what the backward pass carries, on a clone of the model (the user's model is not
changed), and run the package's one gradient step:

- :mod:`.rules`        the LRP rules and their formulas
- :mod:`.composites`   which rule each layer gets (EpsilonPlus, Montavon's, your own mapping)
- :mod:`.canonization` linear layers as :math:`z = W a + b`, BatchNormalization folded in
- :mod:`.layers`       the clone's layers that carry relevance backward
- :mod:`.propagation`  :func:`lrp`
- :mod:`.deeplift_rescale` :func:`deeplift` (the rescale rule)

>>> R = lrp(model, x_test[:4], 8, composite="epsilon_plus")
>>> D = deeplift(model, x_test[:4], Feature("logits", 8), baseline="zero")
"""
from .composites import COMPOSITES
from .deeplift_rescale import deeplift
from .propagation import lrp, unsupported_layers
from .rules import RULES, Rule

__all__ = ["lrp", "deeplift", "Rule", "RULES", "COMPOSITES", "unsupported_layers"]
