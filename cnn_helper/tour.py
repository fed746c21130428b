"""The tour: a figure for each idea of the lectures, computed on the trained MNIST CNN.

``run()`` returns ``[(name, fig), ...]``; ``python -m cnn_helper tour`` saves them as PNGs.
"""
from __future__ import annotations

from . import features, plot, weights
from .helper import CNN_Helper


def run(data_source: str = "auto"):
    cnnh = CNN_Helper(data_source=data_source)
    (_, _), (x_test, y_test) = cnnh.load_data()
    cnn, logistic = cnnh.model(), cnnh.logistic_model()
    print(f"CNN test accuracy: {cnnh.evaluate(cnn):.4f}  "
          f"(logistic regression: {cnnh.evaluate(logistic):.4f}) on {len(x_test)} test images")

    figures = [("convolution_tools", cnnh.plot_convs(labels=False)[0]),
               ("logistic_patterns", plot.patterns(weights.dense_patterns(logistic),
                                                   title="logistic regression: the 10 digit patterns")[0]),
               ("first_layer_kernels", plot.kernels(weights.conv_kernels(cnn),
                                                    title="conv1: the 16 first-layer kernels")[0])]
    eight = x_test[y_test == 8][0]
    maps = features.activations(cnn, eight, ["conv1"])["conv1"]
    figures.append(("conv1_maps_of_an_8",
                    plot.activation_maps(maps, title="conv1 feature maps y_(1),k of an 8")[0]))
    return figures
