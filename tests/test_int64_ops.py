"""No integer transpose and no int64 oneDNN op of the package's own: each prints "oneDNN supports
DT_INT64 (or DT_INT32) only on platforms with AVX-512" to the user's terminal (issue 28). Indices
inside TensorFlow are int32 and never transposed; the arrays the package returns hold int64."""
import keras
import numpy as np
import pytest
from int64_ops import int64_ops_recorded
from keras import layers

from cnn_helper import (
    Feature,
    ablation,
    cam,
    faithfulness,
    feature_visualization,
    max_activation,
    occlusion,
    receptive_field,
    rise,
    saliency,
)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(2)
    inp = keras.Input((14, 14, 1))
    h = layers.Conv2D(4, 3, activation="relu", name="conv1")(inp)
    h = layers.MaxPooling2D(name="pool")(h)
    h = layers.Conv2D(6, 3, activation="relu", name="conv2")(h)
    h = layers.Flatten(name="flatten")(h)
    return keras.Model(inp, layers.Dense(3, name="logits")(h), name="small")


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).random((12, 14, 14, 1)).astype("float32")


CALLS = {
    "scan": lambda m, x: max_activation.scan(m, x, ["conv1", "conv2"], count=3),
    "top_examples at a location": lambda m, x: max_activation.top_examples(
        m, x, Feature("conv2", 1, location=(2, 3)), count=3),
    "scan_part with ids": lambda m, x: max_activation.scan_part(
        m, x, np.arange(len(x)) + 2**40, "conv2", count=3),
    "gradient of a max-pooled feature": lambda m, x: saliency.gradient(m, x, Feature("conv2", 2)),
    "guided backprop at a location": lambda m, x: saliency.guided_backprop(
        m, x, Feature("conv2", 2, location=(1, 1))),
    "occlusion of a feature": lambda m, x: occlusion.sensitivity_map(
        m, x[:2], Feature("conv2", 3), patch=4, stride=2),
    "occlusion, incremental": lambda m, x: occlusion.sensitivity_map(
        m, x[:2], 1, patch=4, stride=2, strategy="incremental"),
    "grad_cam": lambda m, x: cam.grad_cam(m, x, 1, layer="conv2"),
    "rise": lambda m, x: rise.rise(m, x[:2], 1, n_masks=32),
    "deletion": lambda m, x: faithfulness.deletion(m, x[:4], 1, saliency.gradient(m, x[:4], 1)),
    "empirical receptive field": lambda m, x: receptive_field.empirical_support(
        m, "conv2", (2, 2), x[:2], mode="model"),
    "feature visualization": lambda m, x: feature_visualization.visualize(
        m, Feature("conv2", 1), steps=2),
    "ablation": lambda m, x: ablation.predict(m, x, "conv1", [0, 2]),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_no_int64_onednn_op_of_the_package(model, x, name):
    with int64_ops_recorded() as seen:
        CALLS[name](model, x)
    assert not seen, f"{name}: int64 ops the package asked for: {dict(seen)}"


def test_the_recorder_sees_the_package_s_int64_ops_only(x):
    """The recorder itself: an integer transpose asked for by a line of cnn_helper (code compiled
    under a package file name) is seen, the same op asked for by a test is not, nor a float one."""
    import os

    import tensorflow as tf

    import cnn_helper

    package_file = os.path.join(os.path.dirname(cnn_helper.__file__), "made_up.py")
    asked = compile("tf.transpose(tf.constant([[1, 2]], dtype))", package_file, "eval")
    with int64_ops_recorded() as seen:
        eval(asked, {"tf": tf, "dtype": tf.int64})  # noqa: S307
    assert seen == {("Transpose", "made_up.py:1"): 1}
    with int64_ops_recorded() as seen:
        eval(asked, {"tf": tf, "dtype": tf.float32})  # noqa: S307
        tf.transpose(tf.constant([[1, 2]], tf.int64))
    assert not seen


def test_returned_indices_stay_int64(model, x):
    ranked = max_activation.top_examples(model, x, Feature("conv2", 1), count=3)
    assert ranked.high.indices.dtype == np.int64 and ranked.high.locations.dtype == np.int64
    part = max_activation.scan_part(model, x, np.arange(len(x)) + 2**40, "conv2", count=3)
    assert part["conv2"].high.indices.min() >= 2**40
