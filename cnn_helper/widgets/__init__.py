r"""Interactive explorers for class: ipywidgets built from the package's functions (no maths here).

Four explorers, each a class with

- ``.widget``   the ipywidgets container to display (``display(explorer)`` or ``explorer.show()``),
- its controls as attributes (``.layer``, ``.channel``, ``.patch``, ...): set ``.value`` from code
  or move them in the notebook, and the view updates,
- ``.state``    a dict of what it computed and drew last (arrays, values, the PNG bytes shown),
- ``.message``  an HTML area that shows a bad value (an empty label selection, a patch larger than
  the image, ...) instead of raising.

``FeatureExplorer(model, x, y)`` (``feature``)
    choose a layer l, a channel k and the pooling (max / mean) of the feature
    :math:`\y_{(l),k}`; it shows the layer's activation maps :math:`\y_{(l)}` for one example, the
    feature's 9 maximally activating examples, and their receptive-field patches with the saliency
    of the max location (Zeiler & Fergus).
``OcclusionExplorer(model, x, y)`` (``occlusion``)
    choose an example (by index, or the n-th example of a label), the patch size, the stride, the
    fill value and the class c; it shows the occlusion sensitivity map of :math:`\y_{(L),c}` over
    the image and the predicted probabilities.
``DrawingExplorer(model, x, y)`` (``drawing``)
    draw a digit on a pad (pen, eraser, clear, or start from a test digit); after each stroke it
    shows the 28x28 input as the CNN sees it (scaled and centred the MNIST way), the class
    probabilities, the saliency map and the chosen layer's activation maps; the occlusion map on
    demand. The pad is an anywidget (``DrawingPad``), whose JavaScript ships in the package.
``ConvolutionExplorer(digits)`` (``convolution``)
    choose a teaching filter or edit a 3x3 filter, and an input (the synthetic image or an MNIST
    digit); it shows input, filter and output.
``StudyExplorer(trials, path)`` (``study``)
    the class experiment: one 2-AFC trial of ``cnn_helper.study.trials`` per screen, answered by
    click or key, each answer saved in the SQLite file ``path`` as it is given.

Everything that can be cached is (``base.LRU``): the activations of an example for every layer,
one scan of the data set for the top ``count`` of every channel of every layer (per pooling),
predictions, Zeiler & Fergus results and occlusion maps. Figures are drawn by ``cnn_helper.plot``
and shown as PNG bytes in an ``ipywidgets.Image`` (so a browser test can compare what is
rendered).

Example
-------
>>> cnnh = cnn_helper.CNN_Helper()
>>> fe = FeatureExplorer(cnnh.model(), cnnh.x_test, cnnh.y_test)
>>> fe                                   # in a notebook cell: the explorer
>>> fe.channel.value = 5                 # the view follows
>>> fe.state["top"].high.indices         # the 9 maximally activating examples of conv1, k=5
"""
from .base import Explorer, figure_png
from .convolution import ConvolutionExplorer
from .drawing import DrawingExplorer, DrawingPad
from .feature import FeatureExplorer, map_layers
from .occlusion import OcclusionExplorer
from .study import StudyExplorer, StudyKeys

__all__ = ["Explorer", "FeatureExplorer", "OcclusionExplorer", "ConvolutionExplorer",
           "DrawingExplorer", "DrawingPad", "StudyExplorer", "StudyKeys", "map_layers",
           "figure_png"]
