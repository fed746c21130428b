"""A second real data set: the methods on the CNN trained on Fashion-MNIST (Debian's package)."""
import numpy as np
import pytest

from cnn_helper import Feature, data, inverting, max_activation, models, occlusion, saliency


@pytest.fixture(scope="module")
def fashion_cnn():
    return models.load("fashion_cnn", "shipped")


def test_each_logits_top_examples_are_of_its_class(fashion_cnn, fashion_mnist):
    """y_(L),k ranks the 10,000 test images: the 9 highest of every class k are all of class k."""
    _, (x_test, y_test) = fashion_mnist
    for k, name in enumerate(data.FASHION_CLASSES):
        best = max_activation.top_examples(fashion_cnn, x_test, Feature("logits", k), count=9)
        assert np.all(y_test[best.high.indices] == k), name


def test_the_attribution_methods_run_on_clothing(fashion_cnn, fashion_mnist):
    _, (x_test, y_test) = fashion_mnist
    x = x_test[:4]
    target = int(y_test[0])
    for method in (saliency.gradient, saliency.guided_backprop, saliency.grad_cam):
        maps = method(fashion_cnn, x, target)
        assert maps.shape == (4, 28, 28, 1) and np.all(np.isfinite(maps)) and maps.std() > 0
    occ = occlusion.sensitivity_map(fashion_cnn, x[0], target, patch=4, stride=2)
    assert np.all(np.isfinite(occ.values)) and occ.values.std() > 0
    zf = inverting.zeiler_fergus(fashion_cnn, x_test[:500], Feature("conv3", 7), count=4)
    assert len(zf.indices) == 4 and np.all(np.isfinite(zf.saliency))


def test_scan_of_the_conv_layers_agrees_with_top_examples(fashion_cnn, fashion_mnist):
    (x_train, _), _ = fashion_mnist
    x = x_train[:3000]
    scans = max_activation.scan(fashion_cnn, x, ["conv1", "conv2", "conv3"], count=5,
                                progress=False)
    one = max_activation.top_examples(fashion_cnn, x, Feature("conv2", 11), count=5)
    assert np.array_equal(scans["conv2"].channel(11).high.indices, one.high.indices)
    np.testing.assert_allclose(scans["conv2"].channel(11).high.values, one.high.values, rtol=1e-5)
