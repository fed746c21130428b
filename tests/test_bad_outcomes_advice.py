"""Bad outcomes of issue 28 where the package's advice itself failed: the advice in an error
message is executed here as written, on the model that caused it, and must work."""
import re

import keras
import matplotlib
import numpy as np
import pytest
from keras import layers

from cnn_helper import Feature, inverting, max_activation, plot, saliency

matplotlib.use("Agg")


def _classifier():
    keras.utils.set_random_seed(5)
    inp = keras.Input((12, 12, 1))
    h = layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
    h = layers.Flatten(name="flatten")(layers.MaxPooling2D(name="pool")(h))
    out = layers.Dense(3, activation="softmax", name="head")(h)
    return keras.Model(inp, out, name="classifier")


def advised_calls(message: str) -> list:
    """Every ``plot.<name>(...)`` call written in ``message``, parentheses balanced."""
    calls = []
    for start in (m.start() for m in re.finditer(r"plot\.\w+\(", message)):
        depth = 0
        for end in range(message.index("(", start), len(message)):
            depth += {"(": 1, ")": -1}.get(message[end], 0)
            if depth == 0:
                calls.append(message[start:end + 1])
                break
    return calls


def test_zeiler_fergus_of_a_head_class_advises_figures_that_work():
    """Given the ranking of a class (no spatial map), plot.zeiler_fergus used to advise
    inverting.zeiler_fergus(..., examples=result), which then failed; it now advises the figures
    that fit a class, and each advised call runs as written."""
    model = _classifier()
    x = np.random.default_rng(0).random((40, 12, 12, 1)).astype("float32")
    result = max_activation.top_examples(model, x, Feature("head", 1), count=4)
    with pytest.raises(TypeError, match="no spatial map") as caught:
        plot.zeiler_fergus(result)
    calls = advised_calls(str(caught.value))
    assert [c.split("(")[0] for c in calls] == ["plot.max_activating", "plot.saliency_maps"]
    names = {"plot": plot, "saliency": saliency, "x": x, "result": result, "model": model}
    for call in calls:
        fig, _ = eval(call, names)  # noqa: S307 (the advice, run as a user would)
        matplotlib.pyplot.close(fig)
    with pytest.raises(ValueError, match="plot.max_activating") as caught:
        inverting.zeiler_fergus(model, x, Feature("head", 1))
    assert "examples=" not in str(caught.value)


def test_zeiler_fergus_of_a_spatial_ranking_still_advises_computing_the_figure():
    model = _classifier()
    x = np.random.default_rng(1).random((20, 12, 12, 1)).astype("float32")
    result = max_activation.top_examples(model, x, Feature("conv", 2), count=3)
    with pytest.raises(TypeError, match=r"inverting.zeiler_fergus\(model, x, result.target, "
                                        r"examples=result\)"):
        plot.zeiler_fergus(result)
    figure_data = inverting.zeiler_fergus(model, x, result.target, count=3, examples=result)
    fig, _ = plot.zeiler_fergus(figure_data)
    matplotlib.pyplot.close(fig)
