"""CNN_Helper: cheap to construct, and a working facade over data, models and convolution tools."""
import numpy as np
import pytest
from scipy.signal import correlate2d

import cnn_helper
from cnn_helper import CNN_Helper, data, models


def _fail(*args, **kwargs):
    raise AssertionError("CNN_Helper() loaded something at construction")


def test_construction_is_cheap(monkeypatch):
    monkeypatch.setattr(data, "load_mnist", _fail)
    monkeypatch.setattr(data, "load", _fail)
    monkeypatch.setattr(models, "load", _fail)
    monkeypatch.setattr(models, "load_with_info", _fail)
    monkeypatch.setattr(models, "train", _fail)
    monkeypatch.setattr(models, "fit", _fail)
    cnnh = cnn_helper.CNN_Helper()
    # the convolution tools need neither data nor models (any load would fail above)
    cnnh.apply_filt_2d(cnnh.create_img(), cnnh.create_filters()["L"])


@pytest.fixture
def cnnh(bundled, shipped_cnn, shipped_logistic, monkeypatch):
    """A helper on bundled data and shipped weights; loads reuse the session's (no re-parsing)."""
    loads = []

    def load(source, verbose=True, dataset="mnist"):
        loads.append(source)
        return data.MNIST(*bundled, source, dataset)

    def load_with_info(name, source="auto"):
        loads.append((name, source))
        model = {"cnn": shipped_cnn, "logistic": shipped_logistic}[name]
        return model, {"loaded_from": "shipped", "epochs": 1, "data_source": "bundled",
                       "test_accuracy": 0.5}

    monkeypatch.setattr(data, "load", load)
    monkeypatch.setattr(models, "load_with_info", load_with_info)
    helper = CNN_Helper(data_source="bundled", weights="shipped", verbose=False)
    helper.loads = loads
    return helper


def test_data_and_models_load_once_with_the_given_sources(cnnh, bundled, shipped_cnn):
    (x_train, y_train), (x_test, y_test) = cnnh.load_data()
    assert x_train is bundled[0][0] and y_test is bundled[1][1]
    assert cnnh.load_data() is cnnh.load_data()
    assert cnnh.model() is shipped_cnn and cnnh.model() is shipped_cnn
    assert cnnh.loads == ["bundled", ("cnn", "shipped")]
    np.testing.assert_array_equal(cnnh.x_test, bundled[1][0])
    np.testing.assert_array_equal(cnnh.y_test, bundled[1][1])


def test_examples_of(cnnh, bundled):
    x8, y8, idx = cnnh.examples_of(8)
    assert len(x8) == 100 and np.all(y8 == 8)
    np.testing.assert_array_equal(x8, bundled[1][0][idx])
    x, y, _ = cnnh.examples_of([0, 1], split="train")
    assert len(x) == 800 and set(np.unique(y)) == {0, 1}
    with pytest.raises(ValueError, match="'train' or 'test'"):
        cnnh.examples_of(8, split="validation")
    with pytest.raises(ValueError, match="labels present"):
        cnnh.examples_of(11)


def test_evaluate_reaches_the_target(cnnh):
    assert cnnh.evaluate() >= 0.97
    assert 0.85 <= cnnh.evaluate(cnnh.logistic_model()) < cnnh.evaluate()


def test_the_real_loaders_end_to_end(capsys):
    """No monkeypatching: bundled data, shipped weights, verbose messages."""
    helper = CNN_Helper(data_source="bundled", weights="shipped")
    (x_train, _), (x_test, _) = helper.load_data()
    assert x_train.shape == (4000, 28, 28, 1) and x_test.shape == (1000, 28, 28, 1)
    model = helper.model()
    assert model.get_layer("logits").get_config()["activation"] == "linear"
    out = capsys.readouterr().out
    assert "bundled" in out and "shipped" in out and "test accuracy" in out
    assert helper.model_info("logistic")["loaded_from"] == "shipped"
    assert helper.model_info()["test_accuracy"] >= 0.97


def test_convolution_tools():
    cnnh = CNN_Helper()
    img = cnnh.create_img()
    assert img.shape == (10, 10)
    filters = cnnh.create_filters()
    assert "L" in filters and len(filters) == 5
    assert cnnh.pad(img).shape == (12, 12) and cnnh.pad(img, 3).shape == (16, 16)
    for f in filters.values():
        np.testing.assert_allclose(cnnh.apply_filt_2d(img, f), correlate2d(img, f, mode="same"),
                                   atol=1e-6)


def test_plot_convs_returns_fig_and_one_row_per_filter():
    import matplotlib.pyplot as plt

    cnnh = CNN_Helper()
    fig, axes = cnnh.plot_convs()
    assert axes.shape == (5, 3) and len(fig.axes) == 15
    assert not plt.get_fignums()                       # closed: a notebook shows it once
    two = {k: v for k, v in list(cnnh.create_filters().items())[:2]}
    fig, axes = cnnh.plot_convs(np.eye(8), two, labels=False)
    assert axes.shape == (2, 3)
    # the output panel shows the filter's output
    shown = axes[0, 2].images[0].get_array()
    np.testing.assert_allclose(shown, cnnh.apply_filt_2d(np.eye(8), two[list(two)[0]]), atol=1e-6)


def test_showmat_labels_every_value():
    cnnh = CNN_Helper()
    mat = np.arange(6).reshape(2, 3)
    fig, ax = cnnh.showmat(mat)
    assert sorted(t.get_text() for t in ax.texts) == [f"{v:.1f}" for v in range(6)]
    fig, ax = cnnh.showmat(mat, labels=False, title="m")
    assert not ax.texts and ax.get_title() == "m"


def test_fashion_mnist_helper_serves_its_data_and_cnn(fashion_mnist):
    cnnh = CNN_Helper(dataset="fashion_mnist", weights="shipped", verbose=False)
    (x_train, _), (x_test, y_test) = cnnh.load_data()
    assert len(x_train) == 60000 and np.array_equal(y_test, fashion_mnist[1][1])
    assert cnnh.model_info()["model"] == "fashion_cnn" and cnnh.evaluate() >= 0.88
    with pytest.raises(ValueError, match=r"'cnn_blobs' is not one of \('fashion_cnn',\)"):
        cnnh.model("cnn_blobs")


@pytest.mark.parametrize("kwargs, match", [({"data_source": "mnist"}, "data_source"),
                                           ({"weights": "best"}, "weights"),
                                           ({"dataset": "cifar10"}, "dataset 'cifar10'"),
                                           ({"dataset": "fashion_mnist",
                                             "data_source": "bundled"}, "sources of fashion"),
                                           ({"data_source": None}, "data_source")])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CNN_Helper(**kwargs)
