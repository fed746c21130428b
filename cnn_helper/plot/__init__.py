"""Every figure of the package. Functions take computed arrays and results and return
``(fig, axes)``.

They never compute: the results of ``cnn_helper``'s methods carry what a figure needs, and this
package imports none of the modules that compute them. Each function closes the pyplot figure it
makes (``finish``: a notebook shows it once, through the returned ``fig``), and signed maps use a
diverging colormap centred at 0.

By topic:

- ``core``             : ``show_image``, ``show_signed``, ``grid``, ``images``, ``montage``,
  ``to_map``, ``symmetric_limit``, ``finish``, the colormaps;
- ``layers``           : ``showmat``, ``convolutions``, ``pool_switches``, ``activation_maps``,
  ``feature_map``, ``activation_mosaic``, ``kernels``, ``patterns``, ``probabilities``,
  ``max_activating``;
- ``attribution``      : ``saliency_maps`` (``scale``: which maps share a colour scale;
  ``overlay``: each map over its input), ``occlusion_map`` (``limit``: its colour scale, at least
  1 % of the score by default), ``occlusion_grid``;
- ``summaries``        : ``label_histogram``, ``label_histograms``, ``class_average_maps``;
- ``inverting``        : ``zeiler_fergus``, ``zeiler_fergus_montage``;
- ``optimization``     : ``visualizations``, ``visualization_of``, ``compare_visualizations``,
  ``unit_and_examples``, ``inversions``;
- ``panels``           : ``DrawingPanels``, ``drawing_panels``, ``explanation`` (one-figure views
  of the drawing pad and of ``cnn-helper explain``);
- ``receptive_fields`` : ``receptive_field_growth``, ``receptive_field_regions``;
- ``trust``            : ``randomization_grid``, ``similarity_curves``,
  ``data_randomization_grid``, ``faithfulness_curves``, ``ranking_table`` (sanity checks and
  faithfulness);
- ``concepts``         : ``tcav_scores``, ``concept_crops``, ``concept_maps``,
  ``concept_and_crops`` (TCAV and CRAFT);
- ``segments``         : ``segment_outlines``, ``segment_values`` (superpixels and the values
  KernelSHAP and LIME give them);
- ``study``            : ``study_trial``, ``study_results`` (the class experiment,
  ``cnn_helper.study``).

Example
-------
>>> from cnn_helper import plot
>>> fig, axes = plot.saliency_maps(x, {"gradient": saliency.gradient(model, x, 8)})
"""
from .attribution import SALIENCY_SCALES, occlusion_grid, occlusion_map, saliency_maps
from .concepts import concept_and_crops, concept_crops, concept_maps, tcav_scores
from .core import (
    IMAGE_CMAP,
    MAGNITUDE_CMAP,
    SIGNED_CMAP,
    finish,
    grid,
    images,
    montage,
    show_image,
    show_signed,
    symmetric_limit,
    to_map,
)
from .inverting import zeiler_fergus, zeiler_fergus_montage
from .layers import (
    SWITCH_COLOUR,
    WINDOW_COLOUR,
    activation_maps,
    activation_mosaic,
    convolutions,
    feature_map,
    kernels,
    max_activating,
    patterns,
    pool_switches,
    probabilities,
    showmat,
)
from .optimization import (
    compare_visualizations,
    inversions,
    unit_and_examples,
    visualization_of,
    visualizations,
)
from .panels import DrawingPanels, drawing_panels, explanation
from .receptive_fields import (
    CELL_COLOUR,
    FIELD_COLOUR,
    TARGET_COLOUR,
    receptive_field_growth,
    receptive_field_regions,
)
from .segments import segment_outlines, segment_values
from .study import study_results, study_trial
from .summaries import class_average_maps, label_histogram, label_histograms
from .trust import (
    data_randomization_grid,
    faithfulness_curves,
    randomization_grid,
    ranking_table,
    similarity_curves,
)

__all__ = [
    "IMAGE_CMAP", "MAGNITUDE_CMAP", "SIGNED_CMAP", "CELL_COLOUR", "FIELD_COLOUR", "TARGET_COLOUR",
    "finish", "symmetric_limit", "show_image", "show_signed", "grid", "images", "montage", "to_map",
    "showmat", "convolutions", "activation_maps", "activation_mosaic", "kernels", "patterns",
    "probabilities", "max_activating", "saliency_maps", "occlusion_map", "occlusion_grid",
    "zeiler_fergus", "zeiler_fergus_montage", "receptive_field_growth", "receptive_field_regions",
    "pool_switches", "WINDOW_COLOUR", "SWITCH_COLOUR", "feature_map", "label_histogram",
    "label_histograms", "class_average_maps", "SALIENCY_SCALES", "visualizations",
    "compare_visualizations", "unit_and_examples", "inversions", "visualization_of",
    "DrawingPanels", "drawing_panels", "explanation", "randomization_grid", "similarity_curves",
    "data_randomization_grid", "faithfulness_curves", "ranking_table", "study_trial",
    "study_results", "segment_outlines", "segment_values", "tcav_scores", "concept_crops",
    "concept_maps", "concept_and_crops",
]
