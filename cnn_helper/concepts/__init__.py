r"""Concepts: does the network use "a loop"? TCAV and CRAFT on Keras 3.

A saliency map says where the evidence lies in one image; a concept method asks which
human-level ideas a layer carries and whether a class depends on them, whatever channels carry
them:

- :mod:`.vectors`         : a concept activation vector (Kim et al. 2018), the unit normal of a
  linear boundary between a layer's activations of concept examples and of random ones;
- :mod:`.testing`        : the TCAV score, the share of images whose target rises along the CAV,
  tested against random CAVs (t-test, Bonferroni);
- :mod:`.discovery`       : CRAFT (Fel et al., CVPR 2023), concepts discovered without examples by
  non-negative matrix factorization of a layer's activations on image crops; per-image
  concept maps, top crops, and the concepts' importance for a target by Sobol indices;
- :mod:`.importance`   : the importance of CRAFT's concepts for a target (Sobol total indices
  over masks on the concept coefficients);
- :mod:`.attribution`  : CRAFT's concept maps as an attribution method (the registry's "craft");
- :mod:`.sobol`        : the Sobol total indices (Jansen's estimator) over random masks;
- :mod:`.concept_sets` : concept examples drawn by the package (loops, open strokes, vertical
  bars, stripes) and random sets from data.

Example
-------
>>> from cnn_helper import concepts
>>> result = concepts.tcav(model, x_nines, Feature("logits", 9), "loop", "conv3")
>>> bank = concepts.craft(model, x_eights, "conv3", n_concepts=5)
>>> maps = bank.transform(x_eights)                   # (N, 7, 7, 5): where each concept is
"""
from .attribution import craft_attribution
from .concept_sets import CONCEPTS, concept_images, random_images
from .discovery import Craft, craft
from .importance import ConceptImportance, importance
from .sobol import total_indices
from .testing import TCAV, ConceptCAVs, concept_cavs, tcav
from .vectors import CAV, cav

__all__ = ["CAV", "cav", "TCAV", "tcav", "ConceptCAVs", "concept_cavs", "Craft", "craft",
           "ConceptImportance", "importance", "craft_attribution", "total_indices", "CONCEPTS",
           "concept_images", "random_images"]
