"""``cnn-helper explain MODEL IMAGE...``: explain your model's prediction on image files.

For each image: read it, make it the model's input (the rule below), predict, and compute each
method's map of the target class (``--target``: the predicted class by default); write one figure
per image (``plot.panels.explanation``: the input, the top classes, one panel per method) and an
``index.html`` that shows them all, into ``--out``.

The input rule (each step can be changed by its option):

1. colour: grey (PIL "L") for a model with 1 channel, RGB for 3; transparent pixels are put on
   white first; ``--invert`` turns dark-on-light (a digit written on paper) into light-on-dark,
   as MNIST's digits are;
2. size (``--resize``): "mnist" scales the ink into 20x20 and centres it by mass in 28x28
   (``drawing.mnist_input``, LeCun's preprocessing), "crop" cuts the largest centred box of the
   model's aspect ratio and resizes it (bilinear), "stretch" resizes the whole image, "none" keeps
   it (it must have the model's size); "auto" is "mnist" for a (28, 28, 1) model, else "crop";
3. values (``--scale``): pixels 0..255 divided by 255 ("1/255": [0, 1]), kept ("none": a model
   that rescales itself, e.g. with a ``Rescaling(1/255)`` front), or mapped to [-1, 1] ("-1..1",
   MobileNetV2's ``preprocess_input``); "auto" is "none" for a model that takes raw pixels
   (``Rescaling``/``Normalization`` front) and "1/255" otherwise.

Occlusion uses a patch of max(4, round(min(H, W) / 7)) pixels every max(1, patch // 4) pixels
(4 and 1 for 28x28, 32 and 8 for 224x224), painted with the top of the image's range.
"""
from __future__ import annotations

import argparse
import html
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import _graph, _reference, drawing, features, occlusion
from .methods import METHODS

DEFAULT_METHODS = "gradient,guided_backprop,grad_cam,occlusion"
RESIZES = ("auto", "mnist", "crop", "stretch", "none")
SCALES = ("auto", "1/255", "none", "-1..1")


class ExplainError(ValueError):
    """A bad input to ``explain``: printed as one line, exit status 1."""


@dataclass(frozen=True)
class Explained:
    """What ``explain`` made of one image: its file, the model input, the probabilities, the
    class explained, the maps by method, and the figure written."""
    source: Path
    x: np.ndarray
    probabilities: np.ndarray
    target: int
    maps: dict
    figure: Path


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


def read_image(path, channels: int) -> np.ndarray:
    """The pixels (H, W, channels) of a PNG/JPEG file as float32 0..255; transparent pixels on
    white."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            if "A" in img.getbands() or img.mode == "P":
                rgba = img.convert("RGBA")
                img = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
            img = img.convert("L" if channels == 1 else "RGB")
    except FileNotFoundError:
        raise ExplainError(f"cannot read image {str(path)!r}: no such file") from None
    except (UnidentifiedImageError, OSError) as e:
        raise ExplainError(f"cannot read image {str(path)!r}: not a readable PNG or JPEG "
                           f"({type(e).__name__})") from None
    return np.asarray(img, dtype=np.float32).reshape(img.size[1], img.size[0], channels)


def _crop_to_aspect(a, height: int, width: int) -> np.ndarray:
    """The largest centred box of ``a`` with the aspect ratio height : width."""
    h, w = a.shape[:2]
    if h * width > w * height:                  # too tall: cut rows
        keep = max(1, round(w * height / width))
        top = (h - keep) // 2
        return a[top:top + keep]
    keep = max(1, round(h * width / height))
    left = (w - keep) // 2
    return a[:, left:left + keep]


def _resized(a, height, width) -> np.ndarray:
    from PIL import Image

    channels = [np.asarray(Image.fromarray(a[..., c]).resize((width, height),
                                                             Image.Resampling.BILINEAR))
                for c in range(a.shape[-1])]
    return np.stack(channels, axis=-1).astype(np.float32)


def fit_size(a, shape, resize: str) -> np.ndarray:
    """Pixels ``a`` (H, W, C) at the model's size (``shape`` = (H, W, C), None: any) by the
    ``resize`` rule (see the module docstring)."""
    height, width = shape[0] or a.shape[0], shape[1] or a.shape[1]
    if resize == "auto":
        resize = "mnist" if tuple(shape) == (28, 28, 1) else "crop"
    if resize == "mnist":
        if a.shape[-1] != 1:
            raise ExplainError("--resize mnist needs a grey model input (1 channel)")
        return drawing.mnist_input(a[..., 0] / 255.0, size=height) * 255.0
    if resize == "none":
        if a.shape[:2] != (height, width):
            raise ExplainError(f"an image is {a.shape[0]}x{a.shape[1]} but the model takes "
                               f"{height}x{width}; use --resize crop or stretch")
        return a
    if resize == "crop":
        a = _crop_to_aspect(a, height, width)
    return _resized(a, height, width)


def scaled(a, model, scale: str) -> np.ndarray:
    """Pixels 0..255 in the range the model takes, by the ``scale`` rule."""
    if scale == "auto":          # the model's input range, by the package's one range rule
        scale = "none" if _reference.value_range(model)[1][0] == 255.0 else "1/255"
    if scale == "1/255":
        return a / 255.0
    if scale == "-1..1":
        return a / 127.5 - 1.0
    return a


# --------------------------------------------------------------------------- outputs


def probabilities_of(outputs) -> tuple:
    """The head's outputs as probabilities, and whether a softmax was applied: outputs that are
    not already rows of numbers in [0, 1] summing to 1 (logits) go through softmax."""
    out = np.asarray(outputs, dtype=np.float64)
    if np.all(out >= 0) and np.allclose(out.sum(axis=-1), 1.0, atol=1e-3):
        return out, False
    e = np.exp(out - out.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True), True


def occlusion_geometry(shape) -> tuple:
    """(patch, stride) of the occlusion map for an image of ``shape`` (H, W, ...)."""
    patch = max(4, round(min(shape[:2]) / 7))
    return patch, max(1, patch // 4)


def method_map(name: str, model, x, target: int):
    """The map of method ``name`` (a name in ``methods.METHODS``) for one image ``x`` and class
    ``target``; for occlusion the whole ``OcclusionMap`` (the figure draws its relative change)
    with the patch and stride of ``occlusion_geometry``."""
    if name == "occlusion":
        patch, stride = occlusion_geometry(x.shape)
        return occlusion.sensitivity_map(model, x, target, patch=patch, stride=stride)
    return METHODS[name](model, x, target)


def write_index(out: Path, explained: list, methods) -> Path:
    """``index.html`` in ``out``: one section per image, its prediction and its figure."""
    rows = []
    for e in explained:
        p = e.probabilities
        rows.append(f'<section><h2>{html.escape(e.source.name)}</h2>\n<p>predicted '
                    f'{int(np.argmax(p))} (p = {p.max():.3f}); maps of class {e.target}</p>\n'
                    f'<img src="{html.escape(e.figure.name)}" alt="{html.escape(e.source.name)}"'
                    ' style="max-width:100%"></section>')
    page = ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>cnn-helper explain"
            "</title></head>\n<body><h1>cnn-helper explain</h1>\n<p>methods: "
            f"{html.escape(', '.join(methods))}</p>\n" + "\n".join(rows) + "\n</body></html>\n")
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


def explain(model_spec: str, images, out, target="auto", methods=DEFAULT_METHODS,
            resize: str = "auto", scale: str = "auto", invert: bool = False) -> list:
    """Explain each image file with the model; write the figures and index.html to ``out``.

    Every input is checked (model, images, target, methods) before any map is computed.
    Returns the list of ``Explained``.
    """
    from tqdm.auto import tqdm

    from .plot import panels

    names = parse_methods(methods)
    model = load_model(model_spec)
    shape = image_input_shape(model)
    head = _graph.output_layer(model).name
    wanted = parse_target(str(target), features.output_shape(model, head)[-1])
    pixels = [read_image(p, shape[-1]) for p in images]
    x = [scaled(fit_size(255.0 - a if invert else a, shape, resize), model, scale) for a in pixels]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    explained = []
    bar = tqdm(total=len(x) * len(names), desc="explain", unit="map", disable=None)
    for path, xi, figure_name in zip(images, x, _figure_names(images)):
        xi = xi.astype(np.float32)
        p, _ = probabilities_of(features.activations(model, xi, [head])[head])
        t = int(np.argmax(p)) if wanted is None else wanted
        maps = {}
        for name in names:
            maps[name] = method_map(name, model, xi, t)
            bar.update()
        fig, _ = panels.explanation(xi, p, maps, t)
        fig.savefig(out / figure_name, dpi=100, bbox_inches="tight")
        explained.append(Explained(Path(path), xi, p, t, maps, out / figure_name))
    bar.close()
    write_index(out, explained, names)
    return explained


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
    p.add_argument("--scale", default="auto", choices=SCALES,
                   help="auto: none for a model with its own Rescaling/Normalization front, "
                   "else 1/255 (default: auto)")
    p.add_argument("--invert", action="store_true",
                   help="invert the pixels (255 - p): dark digits on light paper become MNIST's "
                   "light on dark")
    return p


def run(args) -> int:
    """Run ``explain`` from parsed arguments; a bad input is one line on stderr, exit 1."""
    try:
        explained = explain(args.model, args.images, args.out, args.target, args.methods,
                            args.resize, args.scale, args.invert)
    except (ExplainError, ValueError, TypeError) as e:
        print(f"cnn-helper explain: error: {e}", file=sys.stderr)
        return 1
    for e in explained:
        print(f"{e.source}: predicted {int(np.argmax(e.probabilities))} "
              f"(p = {e.probabilities.max():.3f}), maps of class {e.target} -> {e.figure}")
    print(f"index: {Path(args.out) / 'index.html'}")
    return 0
