"""The tour: a figure for each idea of the lectures, computed on the trained MNIST CNN.

``run()`` returns ``[(name, fig), ...]``; ``python -m cnn_helper tour`` saves them as PNGs.
"""
from __future__ import annotations

from . import (
    features,
    inverting,
    max_activation,
    occlusion,
    patterns,
    plot,
    receptive_field,
    saliency,
)
from .features import Feature
from .helper import CNN_Helper


def unsure_eight(model, x, y):
    """An 8 the model gets right but not with certainty (p(8) nearest 0.9): occluding a confident
    8 barely moves p(8), an unsure one shows what the model relies on."""
    p8 = features.feature_values(model, x, 8).values
    eights = [i for i in range(len(x)) if y[i] == 8 and p8[i] > 0.5]
    return x[min(eights, key=lambda i: abs(p8[i] - 0.9))]


def run(data_source: str = "auto"):
    cnnh = CNN_Helper(data_source=data_source)
    (_, _), (x_test, y_test) = cnnh.load_data()
    cnn, logistic = cnnh.model(), cnnh.logistic_model()
    print(f"CNN test accuracy: {cnnh.evaluate(cnn):.4f}  "
          f"(logistic regression: {cnnh.evaluate(logistic):.4f}) on {len(x_test)} test images")
    eight = unsure_eight(cnn, x_test, y_test)
    shallow, deep = Feature("conv2", 5), Feature("conv3", 10)

    figures = [
        ("convolution_tools", cnnh.plot_convs(labels=False)[0]),
        ("logistic_patterns", plot.patterns(patterns.dense_patterns(logistic),
                                            title="logistic regression: the 10 digit patterns")[0]),
        ("first_layer_kernels", plot.kernels(patterns.conv_kernels(cnn),
                                             title="conv1: the 16 first-layer kernels")[0]),
        ("conv1_maps_of_an_8", plot.activation_maps(
            features.activations(cnn, eight, ["conv1"])["conv1"],
            title="conv1 feature maps y_(1),k of an 8")[0]),
        ("best_and_worst_8s", plot.max_activating(
            x_test, max_activation.top_examples(cnn, x_test, 8, count=9, labels=8, y=y_test),
            y_test,
            title="the 8s with the highest and lowest probability of being an 8")[0]),
        ("max_activating_conv2", plot.max_activating(
            x_test, max_activation.top_examples(cnn, x_test, shallow, count=9), y_test)[0]),
    ]
    occluded = occlusion.sensitivity_map(cnn, eight, 8, patch=4)
    figures += [
        ("occlusion_grid_of_an_8", plot.occlusion_grid(eight, occluded)[0]),
        ("occlusion_map_of_an_8", plot.occlusion_map(eight, occluded)[0]),
        ("saliency_of_an_8", plot.saliency_maps(eight, {
            "gradient": saliency.gradient(cnn, eight, Feature("logits", 8)),
            "guided backprop": saliency.guided_backprop(cnn, eight, Feature("logits", 8)),
            "deconvnet": saliency.deconvnet(cnn, eight, Feature("logits", 8))},
            title="d logit_8 / d x")[0]),
        ("receptive_field_growth", plot.receptive_field_growth(
            receptive_field.growth(cnn, "conv3", (3, 3)))[0]),
        ("receptive_fields_on_an_8", plot.receptive_field_regions(
            receptive_field.nested_regions(cnn, "conv3", (3, 3)), image=eight)[0]),
    ]
    for feature in (shallow, deep):
        zf = inverting.zeiler_fergus(cnn, x_test, feature, count=9)
        figures.append((f"zeiler_fergus_{feature.layer_name}", plot.zeiler_fergus(zf)[0]))
    return figures
