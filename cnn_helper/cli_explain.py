"""``cnn-helper explain MODEL IMAGE...``: explain your model's prediction on image files.

For each image: read it, make it the model's input (the rule below), predict, and compute each
method's map of the target class (``--target``: the predicted class by default); write one figure
per image (``plot.panels.explanation``: the input, the top classes, one panel per method) and an
``index.html`` that shows them all, into ``--out``.

The input rule (each step can be changed by its option):

1. colour: grey (PIL "L") for a model with 1 channel, RGB for 3; transparent pixels are put on
   white first; ``--invert`` turns dark-on-light (a digit written on paper) into light-on-dark,
   as MNIST's digits are;
2. size (``--resize``): "mnist" removes the paper's level (Otsu's threshold splits paper from
   ink; the paper's shading and noise are subtracted: ``image_input.remove_paper``), then scales
   the ink into 20x20 and centres it by mass in 28x28 (``drawing.mnist_input``, LeCun's
   preprocessing); it warns when the ink covers most of the image (--invert missing?); "crop"
   cuts the largest centred box of the model's aspect ratio and resizes it (bilinear), "stretch"
   resizes the whole image, "none" keeps it (it must have the model's size); "auto" is "mnist"
   for a (28, 28, 1) model, else "crop";
3. values (``--scale``): pixels 0..255 divided by 255 ("1/255": [0, 1]), kept ("none": a model
   that rescales itself, e.g. with a ``Rescaling(1/255)`` front), or mapped to [-1, 1] ("-1..1",
   MobileNetV2's ``preprocess_input``; write it ``--scale=-1..1`` or ``--scale -1..1``); "auto"
   is "none" for a model that takes raw pixels (``Rescaling``/``Normalization`` front), the rule
   of the range a model records (``training_range``: the course CNN's [0, 1]) and "1/255"
   otherwise, and prints the rule it used; images far outside that recorded range are warned of,
   naming the ``--scale`` to use.

What each map explains is said in the terminal and in its panel's title, in the package's
``Feature`` notation: "Grad-CAM of the pre-softmax logit of class 2 (y_(logits),k=2)". The head's
class (its probability after a softmax, its logit after a plain Dense), except that Grad-CAM,
Grad-CAM++ and LayerCAM explain the logit, the score before the softmax they are defined on, where
the model ends in a softmax layer (``--cam-score output``: the head). Classes that tie at the top
(an untrained model) and maps of about 0 are said, in the terminal and the figure, and such a map
is not drawn. Each map has its own colour scale (red positive, blue negative; its colour bar).

Occlusion uses a patch of max(4, round(min(H, W) / 7)) pixels every max(1, patch // 4) pixels
(4 and 1 for 28x28, 32 and 8 for 224x224), painted with the top of the image's range.
"""
from __future__ import annotations

import argparse
import dataclasses
import html
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import _graph, _quiet, features, occlusion
from .image_input import (
    ExplainError,
    fit_size,
    ink_note,
    range_note,
    read_image,
    scale_rule,
    scaled,
)
from .methods import METHODS

DEFAULT_METHODS = "gradient,guided_backprop,grad_cam,occlusion"
RESIZES = ("auto", "mnist", "crop", "stretch", "none")
SCALES = ("auto", "1/255", "none", "-1..1")
CAM_SCORES = ("auto", "output")
OUTSIDE_RANGE_WARNING = r".* far outside .*, the range model .* was trained on"
"""The package's warning about images outside a model's training range (``range_note`` says it
in the command line's words instead)."""


@dataclass(frozen=True)
class Explained:
    """What ``explain`` made of one image: its file, the model input, the probabilities, the
    class explained, the maps by method, the figure written, what each map explains ({method:
    ``Score``}) and the warnings (a tie at the top, maps of about 0, ink all over the image)."""
    source: Path
    x: np.ndarray
    probabilities: np.ndarray
    target: int
    maps: dict
    figure: Path
    scores: dict = field(default_factory=dict)
    notes: tuple = ()
    input_rule: str = ""


@dataclass(frozen=True)
class Score:
    """What a map explains: the scalar ``feature`` (``features.Feature``), in ``words`` ("the
    logit of class 2"), and its value on the image.

    >>> str(Score(Feature("logits", 2), "the logit of class 2", 7.1))
    'the logit of class 2 (y_(logits),k=2)'
    """
    feature: features.Feature
    words: str
    value: float

    def __str__(self):
        return f"{self.words} ({self.feature})"


# --------------------------------------------------------------------------- inputs


def load_model(spec: str):
    """A Keras model from ``spec``: a course model ("course-cnn", "cnn_blobs", ...) or a saved
    ``.keras`` / ``.h5`` file, read by ``models.load``; its ValueError as an ExplainError.

    >>> model = load_model("course-cnn")             # the course CNN
    >>> model = load_model("my_model.keras")
    """
    from . import models

    try:
        return models.load(spec)
    except ValueError as e:              # one line that names the value and what is allowed
        raise ExplainError(str(e)) from None


def image_input_shape(model) -> tuple:
    """(H, W, C) of the model's one image input (H, W may be None), or an ExplainError."""
    try:
        shape = _graph.input_shape(model)
    except (ValueError, TypeError) as e:
        raise ExplainError(str(e)) from None
    if len(shape) != 3 or shape[-1] not in (1, 3):
        raise ExplainError(f"model {model.name!r} has input shape {shape}: explain needs an "
                           "image input (height, width, 1 or 3 channels)")
    return shape


# --------------------------------------------------------------------------- outputs


def probabilities_of(outputs) -> tuple:
    """The head's outputs as probabilities, and whether a softmax was applied: outputs that are
    not already rows of numbers in [0, 1] summing to 1 (logits) go through softmax."""
    out = np.asarray(outputs, dtype=np.float64)
    if np.all(out >= 0) and np.allclose(out.sum(axis=-1), 1.0, atol=1e-3):
        return out, False
    e = np.exp(out - out.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True), True


CAM_METHODS = ("grad_cam", "grad_cam_plus_plus", "layer_cam")   # defined on a pre-softmax score
METHOD_TITLES = {"gradient_x_input": "gradient x input", "guided_backprop": "guided backprop",
                 "smoothgrad": "SmoothGrad", "squaregrad": "SquareGrad", "vargrad": "VarGrad",
                 "integrated_gradients": "integrated gradients", "grad_cam": "Grad-CAM",
                 "grad_cam_plus_plus": "Grad-CAM++", "layer_cam": "LayerCAM",
                 "score_cam": "Score-CAM", "rise": "RISE", "kernel_shap": "KernelSHAP",
                 "lime": "LIME", "guided_grad_cam": "Guided Grad-CAM"}
TIE = 1e-6            # scores within this fraction of the top one tie with it
VANISHING = 1e-10     # a map with max |map| x input span below this x max(1, |score|) is about 0
RESOLUTION = 1e-7     # float32's: an occlusion effect below this x |score| is no effect


def _activation(layer) -> str:
    """The name of the function a layer ends in: "softmax", "linear", "relu", ... ("" none)."""
    if type(layer).__name__ == "Softmax":
        return "softmax"
    return getattr(getattr(layer, "activation", None), "__name__", "")


def pre_softmax_layer(model):
    """The layer whose output the model's softmax head (an ``Activation("softmax")`` or
    ``Softmax`` layer) turns into probabilities: the logits; None for any other head, e.g. a
    ``Dense(activation="softmax")``, whose logits no layer outputs."""
    head = _graph.output_layer(model)
    if _activation(head) != "softmax" or type(head).__name__ not in ("Activation", "Softmax"):
        return None
    return head.input._keras_history[0]


def explained_scores(model, names, target: int, outputs: dict, cam_score: str = "auto") -> dict:
    """{method: ``Score``}: what each method explains. The head's class ``target`` (its
    probability after a softmax, its logit after a linear layer), except for the CAM methods
    (``CAM_METHODS``) on a softmax head, which explain the logit: the pre-softmax score their
    papers define them on (``cam_score="output"``: the head too). ``outputs``: {layer name:
    its output (C,) on the image} for the head and the pre-softmax layer."""
    head, pre = _graph.output_layer(model), pre_softmax_layer(model)
    kind = {"softmax": "probability", "linear": "logit"}.get(_activation(head), "output")
    on_head = Score(features.Feature(head.name, target), f"the {kind} of class {target}",
                    float(outputs[head.name][target]))
    on_logit = None if pre is None or cam_score == "output" else Score(
        features.Feature(pre.name, target), f"the pre-softmax logit of class {target}",
        float(outputs[pre.name][target]))
    return {n: on_logit if n in CAM_METHODS and on_logit else on_head for n in names}


def tie_note(probabilities):
    """A warning when several classes share the top probability (within ``TIE``): the
    "predicted" class is only the first of them; else None."""
    p = np.asarray(probabilities, dtype=np.float64)
    tied = np.flatnonzero(p >= p.max() * (1 - TIE))
    if len(tied) < 2:
        return None
    listed = ", ".join(map(str, tied[:10])) + (", ..." if len(tied) > 10 else "")
    return (f"{len(tied)} classes tie at p = {p.max():.3f} ({listed}): the predicted class is "
            "only the first of them (an untrained or degenerate model?)")


def vanishing_note(m, score: Score, span: float):
    """Why map ``m`` is not drawn, or None: an occlusion effect below float32's resolution of
    the score (``RESOLUTION``), or a map whose max |map| x input ``span`` is below ``VANISHING``
    x max(1, |score|): about 0, at any contrast only rounding noise."""
    if hasattr(m, "unoccluded"):
        effect = float(np.nanmax(np.abs(m.delta))) if np.size(m.delta) else 0.0
        if effect <= RESOLUTION * abs(score.value):
            return ("no effect: hiding any patch leaves the score as it is" if effect == 0 else
                    f"no effect: hiding any patch changes the score by {effect:.1g} at most")
        return None
    peak = float(np.max(np.abs(m)))
    if peak * span <= VANISHING * max(1.0, abs(score.value)):
        return f"map of about 0 (max |map| = {peak:.1g}): not drawn"
    return None


def title_of(name: str, score: Score) -> str:
    """The panel title: the method and what it explains, e.g. "Grad-CAM of the logit of class 2
    (y_(logits),k=2)" (occlusion: the relative change of the score)."""
    method = METHOD_TITLES.get(name, name)
    if name == "occlusion":
        return f"occlusion: change of {score.words}\n({score.feature})"
    return f"{method} of {score.words}\n({score.feature})"


def occlusion_geometry(shape) -> tuple:
    """(patch, stride) of the occlusion map for an image of ``shape`` (H, W, ...)."""
    patch = max(4, round(min(shape[:2]) / 7))
    return patch, max(1, patch // 4)


def method_map(name: str, model, x, target):
    """The map of method ``name`` (a name in ``methods.METHODS``) for one image ``x`` and
    ``target`` (a class index or a ``Feature``); for occlusion the whole ``OcclusionMap`` (the
    figure draws its relative change) with the patch and stride of ``occlusion_geometry``."""
    if name == "occlusion":
        patch, stride = occlusion_geometry(x.shape)
        return occlusion.sensitivity_map(model, x, target, patch=patch, stride=stride)
    return METHODS[name](model, x, target)


def _thumbnail_uri(path, side: int = 256) -> str:
    """The image file at ``path``, at most ``side`` pixels on a side, as a PNG data URI."""
    import base64
    import io

    from PIL import Image

    with Image.open(path) as img:
        img.thumbnail((side, side))
        buffer = io.BytesIO()
        img.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _section(e) -> str:
    """One image's part of index.html: the original image, the prediction, what each map
    explains, the warnings, the figure."""
    name, p = html.escape(e.source.name), e.probabilities
    said = "".join(f"<li>{html.escape(METHOD_TITLES.get(m, m))}: {html.escape(str(s))}</li>"
                   for m, s in e.scores.items())
    notes = "".join(f'<p style="color:darkred">{html.escape(n)}</p>' for n in e.notes)
    return (f'<section><h2>{name}</h2>\n<img src="{_thumbnail_uri(e.source)}" alt="{name}, '
            'the original image" style="max-height:160px;border:1px solid #888">\n'
            f'<p>predicted {int(np.argmax(p))} (p = {p.max():.3f}); maps of class {e.target}'
            f'</p>\n<ul>{said}</ul>\n{notes}<img src="{html.escape(e.figure.name)}" '
            f'alt="{name}, explained" style="max-width:100%"></section>')


def write_index(out: Path, explained: list, methods) -> Path:
    """``index.html`` in ``out``: one section per image: the original image (a thumbnail in the
    page), its prediction, what each map explains, the warnings and its figure."""
    page = ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>cnn-helper explain"
            "</title></head>\n<body><h1>cnn-helper explain</h1>\n<p>methods: "
            f"{html.escape(', '.join(methods))}</p>\n"
            + "\n".join(_section(e) for e in explained) + "\n</body></html>\n")
    path = out / "index.html"
    path.write_text(page)
    return path


# --------------------------------------------------------------------------- the command


def parse_methods(text: str) -> tuple:
    """"gradient,grad_cam" -> ("gradient", "grad_cam"); an unknown name is an ExplainError."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in METHODS]
    if unknown or not names:
        raise ExplainError(f"unknown method {', '.join(unknown) or repr(text)}; choose among "
                           f"{', '.join(METHODS)} (comma-separated)")
    return names


def parse_target(text: str, n_classes: int):
    """"auto" -> None (the predicted class), or a class index in 0..n_classes-1."""
    if text == "auto":
        return None
    try:
        target = int(text)
    except ValueError:
        raise ExplainError(f"--target {text!r} is not a class index or 'auto'") from None
    if not 0 <= target < n_classes:
        raise ExplainError(f"--target {target} is out of range: the model has {n_classes} "
                           f"classes, 0..{n_classes - 1}")
    return target


def _figure_names(paths) -> list:
    """One PNG name per image: its stem, numbered when two images share a stem."""
    stems = [Path(p).stem for p in paths]
    return [f"{s}_explained.png" if stems.count(s) == 1 else f"{s}_{i}_explained.png"
            for i, s in enumerate(stems)]


def _explain_image(model, source, x, names, wanted, figure, notes=(), cam_score="auto",
                   bar=None) -> Explained:
    """One image ``x`` (the model's input): predict, compute each method's map of the target
    (``wanted``, None: the predicted class), check for ties and maps of about 0, and save the
    figure (``plot.panels.explanation``) at ``figure``."""
    from .plot import panels

    head, pre = _graph.output_layer(model).name, pre_softmax_layer(model)
    outputs = features.activations(model, x, [head] + ([pre.name] if pre is not None else []))
    p, _ = probabilities_of(outputs[head])
    target = int(np.argmax(p)) if wanted is None else wanted
    scores = explained_scores(model, names, target, outputs, cam_score)
    notes, maps, blank = [n for n in [*notes, tie_note(p)] if n], {}, {}
    for name in names:
        maps[name] = method_map(name, model, x, scores[name].feature)
        why = vanishing_note(maps[name], scores[name], max(float(np.ptp(x)), 1.0))
        if why:
            blank[name] = why
            notes.append(f"{METHOD_TITLES.get(name, name)}: {why}")
        if bar is not None:
            bar.update()
    tied = tie_note(p) is not None
    heading = (f"no prediction: {np.sum(p >= p.max() * (1 - TIE))} classes tie at p = "
               f"{p.max():.2f}; the maps explain class {target}") if tied else None
    fig, _ = panels.explanation(x, p, maps, target, title=heading, notes=notes, blank=blank,
                                titles={n: title_of(n, scores[n]) for n in names})
    fig.savefig(figure, dpi=100, bbox_inches="tight")
    return Explained(Path(source), x, p, target, maps, Path(figure), scores, tuple(notes))


def explain(model_spec: str, images, out, target="auto", methods=DEFAULT_METHODS,
            resize: str = "auto", scale: str = "auto", invert: bool = False,
            cam_score: str = "auto") -> list:
    """Explain each image file with the model; write the figures and index.html to ``out``.

    Every input is checked (model, images, target, methods) before any map is computed.
    Returns the list of ``Explained``, each with the ``--scale`` rule used in words
    (``scale_rule``) as its ``input_rule``.
    """
    names = parse_methods(methods)
    model = load_model(model_spec)
    shape = image_input_shape(model)
    head = _graph.output_layer(model).name
    wanted = parse_target(str(target), features.output_shape(model, head)[-1])
    grey = [read_image(p, shape[-1]) for p in images]
    grey = [255.0 - a if invert else a for a in grey]
    rule, said = scale_rule(model, scale)
    x = [scaled(fit_size(a, shape, resize), model, rule).astype(np.float32) for a in grey]
    digits = resize == "mnist" or (resize == "auto" and tuple(shape) == (28, 28, 1))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    explained = []
    bar = _quiet.progress_bar(True, total=len(x) * len(names), desc="explain", unit="map")
    for path, a, xi, name in zip(images, grey, x, _figure_names(images)):
        notes = [n for n in [ink_note(a, invert) if digits else None,
                             range_note(model, xi, said)] if n]
        with warnings.catch_warnings():          # said above in the command line's words
            warnings.filterwarnings("ignore", message=OUTSIDE_RANGE_WARNING)
            e = _explain_image(model, path, xi, names, wanted, out / name, notes, cam_score, bar)
        explained.append(dataclasses.replace(e, input_rule=said))
    bar.close()
    write_index(out, explained, names)
    return explained
def _cam_words(name: str, score: Score) -> str:
    """What the terminal adds to a CAM method's line: why it explains the score it does."""
    if name not in CAM_METHODS:
        return ""
    if "pre-softmax" in score.words:
        return (", the score before the softmax, as the method is defined (--cam-score output: "
                "the probability)")
    if "probability" in score.words:
        return (": no layer outputs the score before the softmax (the softmax is inside the "
                "last layer)")
    return ""


def joined_values(argv) -> list:
    """``argv`` with "--scale -1..1" written "--scale=-1..1": argparse takes a word that starts
    with "-" for an option, so the form ``--help`` shows would be an error ("expected one
    argument").

    >>> joined_values(["explain", "m.keras", "a.png", "--scale", "-1..1"])[-1]
    '--scale=-1..1'
    """
    joined = []
    for word in argv:
        if joined and joined[-1] == "--scale" and word in SCALES:
            joined[-1] = f"--scale={word}"
        else:
            joined.append(word)
    return joined


def add_parser(sub, folder_type):
    """The ``explain`` sub-command's arguments (``sub``: argparse's sub-parsers)."""
    p = sub.add_parser("explain", help="explain your model's prediction on image files",
                       description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="a saved .keras or .h5 model, or a course model: course-cnn "
                   "(the course CNN), course-cnn-blobs, or a name of models.MODELS")
    p.add_argument("images", nargs="+", help="PNG or JPEG files")
    p.add_argument("--target", default="auto",
                   help="the class to explain: a class index, or auto (the predicted class)")
    p.add_argument("--methods", default=DEFAULT_METHODS,
                   help=f"comma-separated, among {', '.join(METHODS)} (default: %(default)s)")
    p.add_argument("--out", default="explained", type=folder_type,
                   help="folder for the figures and index.html (default: %(default)s)")
    p.add_argument("--resize", default="auto", choices=RESIZES,
                   help="auto: mnist for a (28, 28, 1) model, else crop (default: auto)")
    p.add_argument("--scale", default="auto", choices=SCALES, metavar="RULE",
                   help="auto, 1/255, none or -1..1 (also written --scale=-1..1); auto: none for "
                   "a model with its own Rescaling/Normalization front, else 1/255, and says so "
                   "(default: auto)")
    p.add_argument("--cam-score", default="auto", choices=CAM_SCORES,
                   help="what Grad-CAM, Grad-CAM++ and LayerCAM explain: auto, the logit (the "
                   "score before the softmax) where the model ends in a softmax layer; output, "
                   "the model's output (default: auto)")
    p.add_argument("--invert", action="store_true",
                   help="invert the pixels (255 - p): dark digits on light paper become MNIST's "
                   "light on dark (--resize mnist then removes the paper's grey level)")
    return p


def run(args) -> int:
    """Run ``explain`` from parsed arguments; a bad input is one line on stderr, exit 1."""
    try:
        explained = explain(args.model, args.images, args.out, args.target, args.methods,
                            args.resize, args.scale, args.invert, args.cam_score)
    except (ExplainError, ValueError, TypeError) as e:
        print(f"cnn-helper explain: error: {e}", file=sys.stderr)
        return 1
    print(explained[0].input_rule)
    for e in explained:
        print(f"{e.source}: predicted {int(np.argmax(e.probabilities))} "
              f"(p = {e.probabilities.max():.3f}), maps of class {e.target} -> {e.figure}")
        for name, score in e.scores.items():
            why = _cam_words(name, score)
            print(f"  {METHOD_TITLES.get(name, name)} of {score}{why}")
        for note in e.notes:
            print(f"  warning: {note}")
    print(f"index: {Path(args.out) / 'index.html'}")
    return 0
