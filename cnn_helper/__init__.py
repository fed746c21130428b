"""cnn_helper: interpret convolutional networks (Keras 3 on TensorFlow) the way the course does.

>>> import cnn_helper
>>> cnnh = cnn_helper.CNN_Helper()
>>> model = cnnh.model()
>>> cnn_helper.Feature("conv2", 3)          # feature map k=3 of layer conv2, max-pooled
"""
import os

# Keep TensorFlow's C++ start-up lines out of notebooks and terminals unless the user asked.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from .features import Feature, FeatureValues  # noqa: E402
from .helper import CNN_Helper  # noqa: E402

__version__ = "0.1.0"
__all__ = ["CNN_Helper", "Feature", "FeatureValues", "__version__"]
