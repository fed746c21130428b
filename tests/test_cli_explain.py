"""``cnn-helper explain`` says what it explained (issue 29): each map's score in the package's
``Feature`` notation, Grad-CAM of the logit where the model ends in a softmax; ties and maps of
about 0 said, not drawn; ``--scale -1..1`` as ``--help`` shows it; a figure in a grid with its
colour legend; index.html shows the original image."""
import warnings

import matplotlib.image as mpimg
import numpy as np
import pytest

from cnn_helper import Feature, cam, cli_explain, image_input, saliency
from cnn_helper.__main__ import main


@pytest.fixture(scope="module")
def files(tmp_path_factory, bundled):
    """A test digit (a 2) as a PNG; a 16x16 grey model whose logits are all 0 (every class
    ties, every map is 0); one whose head is a plain Dense (logits)."""
    import keras
    from PIL import Image

    (_, _), (x_test, _) = bundled
    folder = tmp_path_factory.mktemp("explain")
    Image.fromarray((x_test[0, ..., 0] * 255).astype(np.uint8)).save(folder / "two.png")
    keras.utils.set_random_seed(0)
    front = [keras.Input((16, 16, 1)), keras.layers.Conv2D(4, 3, activation="relu", name="conv")]
    zero = keras.layers.Dense(3, kernel_initializer="zeros", name="logits")
    softmax = keras.layers.Activation("softmax", name="softmax")
    keras.Sequential([*front, keras.layers.Flatten(), zero, softmax]).save(folder / "zero.keras")
    keras.Sequential([*front, keras.layers.GlobalAveragePooling2D(),
                      keras.layers.Dense(3, name="scores")]).save(folder / "plain.keras")
    return folder


def test_grad_cam_explains_the_logit_and_every_title_says_what_it_explains(shipped_cnn, files,
                                                                          tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["explain", "course-cnn", str(files / "two.png"), "--methods",
                 "gradient,grad_cam", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Grad-CAM of the pre-softmax logit of class 2 (y_(logits),k=2), the score before " \
           "the softmax" in printed and "--cam-score output" in printed
    assert "gradient of the probability of class 2 (y_(softmax),k=2)" in printed
    e, = cli_explain.explain("course-cnn", [files / "two.png"], tmp_path / "a",
                             methods="gradient,grad_cam")
    assert e.scores["grad_cam"].feature == Feature("logits", 2)
    np.testing.assert_allclose(e.maps["grad_cam"], cam.grad_cam(shipped_cnn, e.x,
                                                                Feature("logits", 2)), atol=1e-6)
    assert cli_explain.title_of("grad_cam", e.scores["grad_cam"]) == \
        "Grad-CAM of the pre-softmax logit of class 2\n(y_(logits),k=2)"
    on_output, = cli_explain.explain("course-cnn", [files / "two.png"], tmp_path / "b",
                                     methods="grad_cam", cam_score="output")
    assert str(on_output.scores["grad_cam"]) == "the probability of class 2 (y_(softmax),k=2)"
    plain, = cli_explain.explain(str(files / "plain.keras"), [files / "two.png"], tmp_path / "c",
                                 methods="grad_cam", target="1")
    assert cli_explain.title_of("grad_cam", plain.scores["grad_cam"]) == \
        "Grad-CAM of the logit of class 1\n(y_(scores),k=1)"


def test_a_degenerate_model_is_said_to_tie_and_its_maps_are_not_drawn(files, tmp_path, capsys):
    """All logits 0: three classes tie at 1/3, every map is 0, hiding a patch changes nothing."""
    out = tmp_path / "out"
    assert main(["explain", str(files / "zero.keras"), str(files / "two.png"), "--methods",
                 "gradient,grad_cam,occlusion", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "warning: 3 classes tie at p = 0.333 (0, 1, 2)" in printed
    assert "warning: gradient: map of about 0 (max |map| = 0): not drawn" in printed
    assert "warning: Grad-CAM: map of about 0" in printed
    assert "warning: occlusion: no effect: hiding any patch leaves the score as it is" in printed
    assert "3 classes tie" in (out / "index.html").read_text()


@pytest.mark.parametrize("form", [["--scale", "-1..1"], ["--scale=-1..1"]])
def test_scale_minus_one_to_one_parses_in_the_form_help_shows(files, form, tmp_path, capsys):
    assert main(["explain", str(files / "plain.keras"), str(files / "two.png"), *form,
                 "--methods", "gradient", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("--scale -1..1\n")
    e, = cli_explain.explain(str(files / "plain.keras"), [files / "two.png"], tmp_path / "a",
                             methods="gradient", scale="-1..1")
    assert e.x.min() == -1.0 and e.x.max() <= 1.0


def test_help_shows_the_scale_forms_and_auto_says_its_rule(files, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["explain", "--help"])
    assert "--scale=-1..1" in " ".join(capsys.readouterr().out.split())
    assert main(["explain", str(files / "plain.keras"), str(files / "two.png"), "--methods",
                 "gradient", "--out", str(tmp_path)]) == 0
    rule = capsys.readouterr().out.splitlines()[0]
    assert rule.startswith("--scale auto: pixels divided by 255") and "--scale=-1..1" in rule


def test_scale_none_on_the_course_cnn_is_said_in_the_command_lines_words(files, tmp_path,
                                                                         capsys):
    """Pixels 0..255 given to the CNN trained on [0, 1]: one warning that names the option to
    use, not Python's advice to divide x (a UserWarning pointing into the console script)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["explain", "course-cnn", str(files / "two.png"), "--scale", "none",
                     "--methods", "gradient", "--out", str(tmp_path)]) == 0
    assert not [w for w in caught if "far outside" in str(w.message)]
    out = capsys.readouterr().out
    assert ("warning: with --scale none the images are in [0, 255], far outside [0, 1], the range "
            "model 'mnist_cnn' was trained on") in out
    assert "use --scale 1/255 (or --scale auto)" in out and "x / 255" not in out


def test_scale_auto_follows_a_recorded_training_range():
    """The rule "auto" reads the model's range as every method does: a model that records
    training_range (-1, 1) gets --scale -1..1, and the rule says why."""
    import keras

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(2)])
    assert image_input.scale_rule(model, "auto")[0] == "1/255"
    model.training_range = (-1, 1)
    rule, said = image_input.scale_rule(model, "auto")
    assert rule == "-1..1" and "records its training range [-1, 1]" in said


def test_the_figure_is_a_grid_with_colour_bars_and_index_shows_the_original(shipped_cnn, files,
                                                                           tmp_path):
    eight = ("gradient,gradient_x_input,guided_backprop,deconvnet,grad_cam,grad_cam_plus_plus,"
             "layer_cam,occlusion")
    e, = cli_explain.explain("course-cnn", [files / "two.png"], tmp_path, methods=eight)
    height, width = mpimg.imread(e.figure).shape[:2]
    assert width < 2 * height                                    # rows of 4, not a strip
    from cnn_helper.plot import panels

    fig, axes = panels.explanation(e.x, e.probabilities, e.maps, e.target)
    assert sum(ax.get_label() == "<colorbar>" for ax in fig.axes) == 8    # one per map
    legend = " ".join(t.get_text() for t in fig.texts)
    assert "red" in legend and "blue" in legend and "own scale" in legend
    index = (tmp_path / "index.html").read_text()
    assert 'src="data:image/png;base64,' in index and "the original image" in index
    np.testing.assert_allclose(e.maps["gradient"], saliency.gradient(shipped_cnn, e.x, 2),
                               atol=1e-6)
