"""cnn_helper.patterns: first-layer kernels and dense patterns are the model's own numbers."""
import keras
import numpy as np
import pytest

from cnn_helper import patterns


def test_conv_kernels_of_the_first_layer(shipped_cnn):
    k = patterns.conv_kernels(shipped_cnn)
    assert k.shape == (16, 3, 3, 1)
    kernel = np.asarray(shipped_cnn.get_layer("conv1").kernel)          # (3, 3, 1, 16)
    for i in range(16):
        np.testing.assert_array_equal(k[i], kernel[..., i])


def test_conv_kernels_of_a_named_layer(shipped_cnn):
    k = patterns.conv_kernels(shipped_cnn, "conv2")
    assert k.shape == (32, 3, 3, 16)
    kernel = np.asarray(shipped_cnn.get_layer("conv2").kernel)        # (3, 3, 16, 32)
    np.testing.assert_array_equal(k[5, :, :, 7], kernel[:, :, 7, 5])


def test_conv_kernels_bad_layers(shipped_cnn, shipped_logistic):
    with pytest.raises(ValueError, match="not a Conv2D"):
        patterns.conv_kernels(shipped_cnn, "dense")
    with pytest.raises(ValueError, match="no Conv2D layer"):
        patterns.conv_kernels(shipped_logistic)
    with pytest.raises(ValueError, match="no layer 'conv7'"):
        patterns.conv_kernels(shipped_cnn, "conv7")


def test_dense_patterns_of_the_logistic_model(shipped_logistic, bundled):
    _, (x_test, _) = bundled
    p = patterns.dense_patterns(shipped_logistic)
    assert p.shape == (10, 28, 28, 1)
    layer = shipped_logistic.get_layer("logits")
    bias = np.asarray(layer.bias)
    logits = np.asarray(keras.Model(shipped_logistic.inputs[0], layer.output)(x_test[:5]))
    for n in range(5):
        for k in range(10):
            # the lecture's picture: logit k = pattern k . x + b_k
            assert float(np.sum(p[k] * x_test[n]) + bias[k]) == pytest.approx(float(logits[n, k]),
                                                                               abs=1e-4)
    # and the predicted digit is the best-matching pattern
    scores = np.einsum("khwc,nhwc->nk", p, x_test[:5]) + bias
    np.testing.assert_array_equal(scores.argmax(1), logits.argmax(1))


def test_dense_patterns_bad_layers(shipped_cnn, shipped_logistic):
    with pytest.raises(ValueError, match="cannot be reshaped"):
        patterns.dense_patterns(shipped_cnn, "dense")       # 3136 inputs, not a 28x28 image
    with pytest.raises(ValueError, match="not a Dense layer"):
        patterns.dense_patterns(shipped_cnn, "conv1")
    with pytest.raises(ValueError, match="no layer"):
        patterns.dense_patterns(shipped_logistic, "dense")
