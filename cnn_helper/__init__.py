"""cnn_helper: interpret convolutional networks (Keras 3 on TensorFlow) the way the course does.

>>> import cnn_helper
>>> cnnh = cnn_helper.CNN_Helper()
>>> model = cnnh.model()
>>> cnn_helper.Feature("conv2", 3)          # feature map k=3 of layer conv2, max-pooled
"""
import logging
import os
import sys

from . import _quiet, _requirements

# TensorFlow 2.16+ and Keras 3.15+, or an ImportError saying what to install: setup.cfg lists no
# TensorFlow distribution, so that pip keeps the one the user has (see cnn_helper/_requirements.py)
_requirements.check()

# TensorFlow's native start-up lines (absl's "All log messages before absl::InitializeLog()...",
# oneDNN's notice, "To enable the following instructions...") stay out of terminals and notebooks
# unless CNN_HELPER_VERBOSE=1: the first `import tensorflow`, whoever makes it, runs with them
# filtered out (see cnn_helper/_quiet.py), and TF_CPP_MIN_LOG_LEVEL=2 keeps later C++ INFO and
# WARNING lines out. Python warnings and errors still reach the user.
_quiet.install()

if "ipykernel" in sys.modules and not _quiet.verbose():
    # In Jupyter, fd 2 is cell output: load TensorFlow now (elsewhere it loads lazily), and let
    # only FATAL C++ logs through, e.g. not oneDNN's "supports DT_INT64 only on platforms with
    # AVX-512" that some CPUs print at the first int64 op (errors still raise Python exceptions).
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "2" and "tensorflow" not in sys.modules:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow  # noqa: E402, F401


class _NoRetracingNotice(logging.Filter):
    """Drop TensorFlow's "triggered tf.function retracing" notice. The package compiles one small
    function per (model, layers) it is asked about; TF counts those as retracing of one closure and
    would print the notice into notebooks. Every other TensorFlow message still passes."""

    def filter(self, record):
        return "triggered tf.function retracing" not in record.getMessage()


logging.getLogger("tensorflow").addFilter(_NoRetracingNotice())

from .features import Feature, FeatureValues  # noqa: E402
from .helper import CNN_Helper  # noqa: E402

__version__ = "0.1.0"
__all__ = ["CNN_Helper", "Feature", "FeatureValues", "__version__"]
