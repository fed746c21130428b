"""CNN_Helper: the one object the lecture notebooks use.

>>> cnnh = CNN_Helper()                    # cheap: nothing is loaded yet
>>> (x_train, y_train), (x_test, y_test) = cnnh.load_data()
>>> model = cnnh.model()                   # the trained MNIST CNN (shipped weights)
>>> blobs = cnnh.model("cnn_blobs")        # the same CNN trained with random bright blobs added
>>> cnnh.evaluate()                        # test accuracy
0.97...
>>> fashion = CNN_Helper(dataset="fashion_mnist")   # Fashion-MNIST and the CNN trained on it
"""
from __future__ import annotations

import numpy as np

from . import convolution, data, models, plot

CNN_MODELS = {"mnist": ("cnn", "cnn_blobs", "cnn_random_labels"), "fashion_mnist": ("fashion_cnn",)}
"""The names ``CNN_Helper.model`` takes for each data set (``cnn_helper.models``): on MNIST the
course CNN, the same CNN trained with blobs, and trained on permuted labels; on Fashion-MNIST the
same CNN trained on it. The first is the default."""


class CNN_Helper:
    """Data, trained models and the convolution teaching tools, loaded lazily and kept.

    Parameters
    ----------
    data_source : where the data come from (``cnn_helper.data``): for MNIST "auto" | "keras" |
                  "download" | "bundled" (notebooks pin "bundled"), for Fashion-MNIST "auto" |
                  "debian" | "keras" | "download"
    weights     : "auto" | "shipped" | "cache"  (see ``cnn_helper.models.load``)
    verbose     : print which data source and weights are used
    dataset     : "mnist" (the course's) or "fashion_mnist" (with the CNN trained on it)
    """

    def __init__(self, data_source: str = "auto", weights: str = "auto", verbose: bool = True,
                 dataset: str = "mnist"):
        if dataset not in data.DATASETS:
            raise ValueError(f"dataset {dataset!r} is not one of {tuple(data.DATASETS)}")
        if data_source not in data.DATASETS[dataset]:
            raise ValueError(f"data_source {data_source!r} is not one of "
                             f"{data.DATASETS[dataset]} (the sources of {dataset})")
        if weights not in models.WEIGHT_SOURCES:
            raise ValueError(f"weights {weights!r} is not one of {models.WEIGHT_SOURCES}")
        self.data_source, self.weights, self.verbose = data_source, weights, verbose
        self.dataset = dataset
        self._data = None
        self._models = {}           # name -> (model, info)

    # ----------------------------------------------------------------- data and models

    def load_data(self):
        """The data set's ``(x_train, y_train), (x_test, y_test)``, loaded once."""
        if self._data is None:
            found = data.load(self.data_source, self.verbose, self.dataset)
            self._data = found.train, found.test
        return self._data

    @property
    def x_test(self):
        return self.load_data()[1][0]

    @property
    def y_test(self):
        return self.load_data()[1][1]

    def examples_of(self, label, split: str = "test"):
        """Images, labels and indices of every example with ``label`` (int or list) in a split."""
        if split not in ("train", "test"):
            raise ValueError(f"split {split!r} is not 'train' or 'test'")
        x, y = self.load_data()[0 if split == "train" else 1]
        return data.select_labels(x, y, label)

    def _load(self, name):
        if name not in self._models:
            model, info = models.load_with_info(name, self.weights)
            if self.verbose:
                print(f"{name}: weights from {info['loaded_from']} (trained {info['epochs']} "
                      f"epochs on {info['data_source']} "
                      f"{data.TITLES[info.get('dataset', 'mnist')]}, test accuracy "
                      f"{info['test_accuracy']:.4f})")
            self._models[name] = model, info
        return self._models[name]

    def model(self, name=None):
        """The trained course CNN (functional Keras model; layers conv1..conv3, dense, logits,
        softmax), or on Fashion-MNIST the same CNN trained on it.

        ``name="cnn_blobs"``: the same architecture, same layer names, trained with data
        augmentation (random bright squares added to the training images, labels kept; see
        ``cnn_helper.augmentation``), to compare with the plain CNN on the occlusion experiment.
        ``name="cnn_random_labels"``: trained on permuted labels (data randomization).

        >>> plain, blobs = cnnh.model(), cnnh.model("cnn_blobs")
        """
        names = CNN_MODELS[self.dataset]
        name = names[0] if name is None else name
        if name not in names:
            raise ValueError(f"model name {name!r} is not one of {names} on {self.dataset} (the "
                             "logistic regression is cnnh.logistic_model())")
        return self._load(name)[0]

    def logistic_model(self):
        """The trained logistic-regression model whose weights are the 10 digit patterns."""
        return self._load("logistic")[0]

    def model_info(self, name=None) -> dict:
        """Where model ``name`` (default: ``model()``'s; or "logistic") came from: data set and
        source, seed, epochs, test accuracy, ``loaded_from`` ("shipped" or the cache folder)
        and, for "cnn_blobs", its ``augmentation``."""
        return self._load(CNN_MODELS[self.dataset][0] if name is None else name)[1]

    def evaluate(self, model=None) -> float:
        """Test accuracy of ``model`` (default: the CNN) on this helper's test split."""
        model = self.model() if model is None else model
        x_test, y_test = self.load_data()[1]
        return models.accuracy(model, x_test, y_test)

    # ----------------------------------------------------------------- convolution teaching tools

    def create_img(self, size: int = 10):
        """A small synthetic image with edges, a band and a corner (``convolution.create_img``)."""
        return convolution.create_img(size)

    def create_filters(self):
        """The named 3x3 teaching filters: edges, light bands and an "L"."""
        return convolution.filters()

    def pad(self, img, n: int = 1):
        return convolution.pad(img, n)

    def apply_filt_2d(self, img, filt):
        """out[r, c] = filter centred at img[r, c] (zero padding keeps the size)."""
        return convolution.apply_filt_2d(img, filt)

    def showmat(self, mat, ax=None, labels=True, title=None):
        """Draw a matrix with its values; returns (fig, ax)."""
        return plot.showmat(mat, ax=ax, labels=labels, title=title)

    def plot_convs(self, img=None, filters=None, labels=True):
        """Input / filter / output for each filter (default: the synthetic image, every filter)."""
        img = self.create_img() if img is None else np.asarray(img)
        filters = self.create_filters() if filters is None else filters
        results = {name: convolution.apply_filt_2d(img, f) for name, f in filters.items()}
        return plot.convolutions(img, results, filters, labels=labels)

    # ------------------------------------------------------------- explorers (cnn_helper.widgets)

    def feature_explorer(self, x=None, y=None, **kwargs):
        """The FeatureExplorer (layer, channel, pooling) on the CNN and the test split (or x, y)."""
        from . import widgets
        x, y = (self.x_test, self.y_test) if x is None else (x, y)
        return widgets.FeatureExplorer(self.model(), x, y, **kwargs)

    def occlusion_explorer(self, x=None, y=None, **kwargs):
        """The OcclusionExplorer (example, patch, stride, fill, class) on the CNN and test split."""
        from . import widgets
        x, y = (self.x_test, self.y_test) if x is None else (x, y)
        return widgets.OcclusionExplorer(self.model(), x, y, **kwargs)

    def convolution_explorer(self, **kwargs):
        """The ConvolutionExplorer: teaching filters (or your 3x3) on the synthetic image or a test
        digit."""
        from . import widgets
        return widgets.ConvolutionExplorer(digits=self.x_test, **kwargs)

    def drawing_explorer(self, x=None, y=None, **kwargs):
        """The DrawingExplorer: draw a digit and see the CNN's input, probabilities, saliency and
        activation maps follow each stroke; "start from test digit #i" takes the test split (or
        x, y). ``start=i`` opens it with test digit i on the pad."""
        from . import widgets
        x, y = (self.x_test, self.y_test) if x is None else (x, y)
        return widgets.DrawingExplorer(self.model(), x, y, **kwargs)

    def study_explorer(self, trials, path, participant=None, **kwargs):
        """The class experiment's screen (``cnn_helper.widgets.study.StudyExplorer``): one trial
        of ``trials`` (from ``cnn_helper.study.trials``) per screen, each answer saved in the
        SQLite file ``path`` as it is given; ``confidence=False`` asks for the choice alone.

        >>> ts = cnn_helper.study.trials(cnnh.model(), cnnh.x_test, ["conv1", "conv3"], seed=0)
        >>> cnnh.study_explorer(ts, "class.sqlite")
        """
        from .widgets.study import StudyExplorer
        return StudyExplorer(trials, path, participant, **kwargs)
