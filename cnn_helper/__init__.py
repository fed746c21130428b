"""cnn_helper: interpret convolutional networks (Keras 3 on TensorFlow) the way the course does.

>>> import cnn_helper
>>> cnnh = cnn_helper.CNN_Helper()
>>> model = cnnh.model()
>>> cnn_helper.Feature("conv2", 3)          # feature map k=3 of layer conv2, max-pooled
"""
import logging
import os
import sys

# Keep TensorFlow's C++ start-up lines out of notebooks and terminals unless the user asked.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _import_tensorflow_quietly():
    """Import TensorFlow with file descriptor 2 pointed at /dev/null while it loads.

    TensorFlow 2.21's native libraries write start-up lines (absl's "All log messages before
    absl::InitializeLog()..." and oneDNN's notice, with a timestamp) straight to fd 2 during
    ``import tensorflow``, whatever TF_CPP_MIN_LOG_LEVEL says. A Jupyter kernel forwards fd 2 into
    the cell's output, so they would appear in the notebooks (and break nbval's comparison).
    Python-level warnings and errors still reach the user: they go through sys.stderr and
    exceptions, not fd 2 of this window.
    """
    if "tensorflow" in sys.modules:
        return
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


if "ipykernel" in sys.modules:
    # In Jupyter, fd 2 is cell output: load TensorFlow now, quietly (elsewhere it loads lazily), and
    # let only FATAL C++ logs through, e.g. not oneDNN's "supports DT_INT64 only on platforms with
    # AVX-512" that some CPUs print at the first int64 op (errors still raise Python exceptions).
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "2" and "tensorflow" not in sys.modules:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    _import_tensorflow_quietly()


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
