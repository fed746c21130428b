"""What cnn_helper needs beside its listed dependencies: TensorFlow 2.16 or newer, Keras 3.15+.

setup.cfg lists no TensorFlow distribution among the requirements. ``tensorflow``,
``tensorflow-cpu`` and ``tensorflow[and-cuda]`` all install the one module ``tensorflow``, and pip,
asked for one of them where another is installed, installs the second over the first: a GPU
machine or a hosted notebook (Colab) would lose its GPU build. So the package keeps whatever
TensorFlow the user has (``pip install -e .``), the extras bring one where there is none
(``.[cpu]``, ``.[gpu]``), and ``check`` says at import what to install when TensorFlow is missing
or too old (tensorflow-probability does the same). It imports neither TensorFlow nor Keras: it
looks TensorFlow up (``importlib.util.find_spec``) and reads the installed versions from the
distributions' metadata, so ``import cnn_helper`` stays as fast as before.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import sys

TENSORFLOW_FLOOR = "2.16"
"""The first TensorFlow whose Keras is Keras 3 (``tf.keras`` before 2.16 is Keras 2)."""
KERAS_FLOOR = "3.15"
"""The first Keras the package's tests pass with, on TensorFlow 2.16.2 as on 2.21: ``keras.tree``
and ``clone_model(recursive=)`` came in 3.1 and 3.3; up to 3.5, cloning a model with a layer
rebuilt on a gate (receptive fields' twins) fails; up to 3.14, cloning a model with a ``Lambda``
layer that has no ``output_shape`` (guided backprop, receptive fields) fails."""
TENSORFLOW_DISTRIBUTIONS = (
    "tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-intel", "tensorflow-macos",
    "tensorflow-aarch64", "tensorflow-cpu-aws", "tensorflow-rocm", "intel-tensorflow",
    "tf-nightly", "tf-nightly-cpu")
"""The names TensorFlow is distributed under (each installs the module ``tensorflow``)."""

INSTALL_TENSORFLOW = (
    "Install one into this Python ({python}):\n"
    "  from a clone of cnn_helper:  pip install -e \".[cpu]\"   (CPU only, the smaller download)\n"
    "                               pip install -e \".[gpu]\"   (Linux with an NVIDIA GPU)\n"
    "  or TensorFlow alone:         pip install tensorflow      "
    "(with CUDA for a GPU: pip install \"tensorflow[and-cuda]\")")


def version_tuple(text: str) -> tuple:
    """The leading numbers of a version, to compare versions.

    >>> version_tuple("2.16.0rc1") < version_tuple("2.16.1") and version_tuple("2.9") < (2, 16)
    True
    """
    numbers = re.match(r"\d+(?:\.\d+)*", text)
    return tuple(int(part) for part in numbers.group().split(".")) if numbers else ()


def installed_tensorflow() -> dict:
    """{distribution: version} of the TensorFlow distributions installed (usually one)."""
    found = {}
    for name in TENSORFLOW_DISTRIBUTIONS:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def tensorflow_problem() -> str | None:
    """What is wrong with this Python's TensorFlow for cnn_helper, or None."""
    if importlib.util.find_spec("tensorflow") is None:
        return (f"cnn_helper needs TensorFlow {TENSORFLOW_FLOOR} or newer, and this Python has "
                "none (cnn_helper does not install one itself: it keeps the TensorFlow you "
                "have, e.g. a GPU build).\n" + INSTALL_TENSORFLOW.format(python=sys.executable))
    for name, version in installed_tensorflow().items():
        if version_tuple(version) < version_tuple(TENSORFLOW_FLOOR):
            return (f"cnn_helper needs TensorFlow {TENSORFLOW_FLOOR} or newer (the first with "
                    f"Keras 3); this Python ({sys.executable}) has {name} {version}. Upgrade "
                    f"it in place: pip install --upgrade \"{name}>={TENSORFLOW_FLOOR}\"")
    return None


def keras_problem() -> str | None:
    """What is wrong with this Python's Keras for cnn_helper (missing, Keras 2, too old), or
    None."""
    upgrade = f"pip install --upgrade \"keras>={KERAS_FLOOR},<4\""
    if importlib.util.find_spec("keras") is None:
        return f"cnn_helper needs Keras {KERAS_FLOOR} or newer, and this Python has none: {upgrade}"
    try:
        version = importlib.metadata.version("keras")
    except importlib.metadata.PackageNotFoundError:     # a Keras without metadata: trust it
        return None
    if version_tuple(version) < (3,):
        return (f"cnn_helper needs Keras 3 ({KERAS_FLOOR} or newer); this Python has keras "
                f"{version}, which is Keras 2 (as tf_keras is): {upgrade}, with TensorFlow "
                f"{TENSORFLOW_FLOOR} or newer")
    if version_tuple(version) < version_tuple(KERAS_FLOOR):
        return (f"cnn_helper needs Keras {KERAS_FLOOR} or newer; this Python has keras "
                f"{version}: {upgrade}")
    return None


def check():
    """Raise an ImportError that says what to install when TensorFlow or Keras 3 is missing or
    too old; otherwise do nothing (nothing is imported)."""
    problem = tensorflow_problem() or keras_problem()
    if problem:
        raise ImportError(problem)
