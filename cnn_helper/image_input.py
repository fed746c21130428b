"""Image files as a model's input: the input rule of ``cnn-helper explain`` (``cli_explain``).

Read a PNG/JPEG file (``read_image``), make it the model's size (``fit_size``: for a digit, the
paper's level removed by ``remove_paper`` and LeCun's MNIST preprocessing) and the model's range
of values (``scaled``, by the rule ``scale_rule`` says in words).

>>> pixels = read_image("my_digit.jpg", channels=1)                 # (H, W, 1), 0..255
>>> x = scaled(fit_size(255.0 - pixels, (28, 28, 1), "auto"), model, "auto")   # --invert
"""
from __future__ import annotations

import numpy as np

from . import _graph, _reference, drawing


class ExplainError(ValueError):
    """A bad input to ``explain``: printed as one line, exit status 1."""


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


def otsu_threshold(values) -> float:
    r"""Otsu's threshold of grey values in 0..255: the level t that splits them into two classes,
    :math:`v \le t` (paper) and :math:`v > t` (ink), of the largest between-class variance
    (Otsu 1979), over a histogram of 256 levels:

    .. math::  \sigma_B^2(t) = \omega_0 \omega_1 (\mu_0 - \mu_1)^2
               = \frac{(\mu \, \omega_0 - m_0)^2}{\omega_0 (1 - \omega_0)}

    where :math:`\omega_0(t)` is the fraction of values :math:`\le t`, :math:`m_0(t)` their
    fraction-weighted sum, :math:`\mu_0 = m_0 / \omega_0`, :math:`\mu_1` the mean of the rest
    and :math:`\mu` the mean of all.

    >>> otsu_threshold(np.array([10, 12, 11, 200, 210]))          # between the two groups
    12.0
    """
    counts, _ = np.histogram(values, bins=256, range=(0, 256))
    fraction = counts / max(counts.sum(), 1)
    omega0 = np.cumsum(fraction)
    m0 = np.cumsum(fraction * np.arange(256))
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (m0[-1] * omega0 - m0) ** 2 / (omega0 * (1 - omega0))
    return float(np.argmax(np.nan_to_num(between, posinf=0.0)))


def paper_level(grey, paper) -> np.ndarray:
    """The paper's level at every pixel of ``grey`` (H, W): the surface of degree 2 in (row,
    column), a shading gradient, fitted by least squares to the pixels where ``paper`` is True
    (their median when there are too few)."""
    rows, cols = np.mgrid[0:grey.shape[0], 0:grey.shape[1]] / max(grey.shape)
    terms = np.stack([np.ones_like(rows), rows, cols, rows ** 2, rows * cols, cols ** 2], -1)
    if paper.sum() < 4 * terms.shape[-1]:
        return np.full(grey.shape, np.median(grey[paper]) if paper.any() else 0.0)
    coefficients, *_ = np.linalg.lstsq(terms[paper], grey[paper], rcond=None)
    return terms @ coefficients


def paper_and_noise(grey, paper) -> tuple:
    """The paper's level b (``paper_level``) and its noise n: the median + 3 robust standard
    deviations (1.4826 x the median absolute deviation) of its pixels' v - b. Fitted twice: the
    second time without the pixels above n, the faint edges of the ink that Otsu's threshold
    left on the paper's side."""
    for _ in range(2):
        level = paper_level(grey, paper)
        residual = (grey - level)[paper]
        if residual.size == 0:
            return level, 0.0
        centre = np.median(residual)
        noise = centre + 3 * 1.4826 * np.median(np.abs(residual - centre))
        paper = paper & (grey - level <= noise)
    return level, float(noise)


def remove_paper(grey) -> np.ndarray:
    """A photo of a light digit on darker paper (a digit written dark on paper, after
    ``--invert``), grey (H, W) 0..255, as MNIST's light digit on black:

    1. Otsu's threshold (``otsu_threshold``) splits the pixels into paper and ink;
    2. the paper's level b (its shading too) and noise n (``paper_and_noise``) are estimated;
    3. n and the ink's level i, the 90th percentile of the ink's v - b, map to 0 and 255:
       out = 255 clip((v - b - n) / (i - n), 0, 1).

    A clean MNIST digit (paper 0, most ink near 255) comes back as it was (to 1 %).

    >>> digit = remove_paper(255.0 - photo)          # a dark digit on grey paper, inverted
    """
    grey = np.asarray(grey, dtype=np.float64)
    if np.ptp(grey) < 1:                                 # one level: no ink, no paper to tell
        return np.zeros_like(grey, dtype=np.float32)
    ink = grey > otsu_threshold(grey)
    level, noise = paper_and_noise(grey, ~ink)
    flat = grey - level
    top = np.percentile(flat[ink], 90) if ink.any() else 255.0
    if top <= noise:                                     # no ink above the paper: a blank image
        return np.zeros_like(grey, dtype=np.float32)
    return (255.0 * np.clip((flat - noise) / (top - noise), 0, 1)).astype(np.float32)


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
        return drawing.mnist_input(remove_paper(a[..., 0]) / 255.0, size=height) * 255.0
    if resize == "none":
        if a.shape[:2] != (height, width):
            raise ExplainError(f"an image is {a.shape[0]}x{a.shape[1]} but the model takes "
                               f"{height}x{width}; use --resize crop or stretch")
        return a
    if resize == "crop":
        a = _crop_to_aspect(a, height, width)
    return _resized(a, height, width)


RULE_OF_RANGE = {(0.0, 1.0): "1/255", (-1.0, 1.0): "-1..1", (0.0, 255.0): "none"}
"""The ``--scale`` rule that takes pixels 0..255 to each input range it can reach."""


def scale_rule(model, scale: str) -> tuple:
    """The ``scale`` rule to apply ("auto" resolved for ``model``) and a sentence that says it,
    naming the option that overrides it. "auto" reads the model's input range as every method
    does (``_reference.value_range``): 0..255 for a model with a Rescaling/Normalization front,
    the range it records as ``training_range`` (the package's models do), else [0, 1].

    >>> scale_rule(model, "auto")[0]                  # the course CNN: trained on [0, 1]
    '1/255'
    """
    if scale != "auto":
        return scale, f"--scale {scale}"
    (low,), (high,) = _reference.value_range(model, n_channels=1)
    rule = RULE_OF_RANGE.get((low, high), "1/255")
    if _graph.takes_integer_images(model):
        why = "the model has a Rescaling or Normalization layer at its front"
    elif _graph.training_range(model) is not None:
        why = f"the model records its training range [{low:g}, {high:g}]"
    else:
        why = "the model has no Rescaling or Normalization layer at its front"
    said = {"none": "pixels kept 0..255", "1/255": "pixels divided by 255, to [0, 1]",
            "-1..1": "pixels mapped to [-1, 1]"}[rule]
    return rule, (f"--scale auto: {said} ({why}); a model trained on [-1, 1] (MobileNetV2's "
                  "preprocess_input) needs --scale=-1..1, one that takes 0..255 --scale none")


def range_note(model, x, said: str):
    """A warning, in the command line's words, when the images ``x`` as the model gets them lie
    far outside the range it was trained on (``_graph.outside_training_range``); else None."""
    outside = _graph.outside_training_range(model, x)
    if outside is None:
        return None
    seen, trained = outside
    fix = RULE_OF_RANGE.get(trained)
    advice = (f"use --scale {fix}" if fix else
              f"scale the images to [{trained[0]:g}, {trained[1]:g}]")
    return (f"with {said.split(':')[0]} the images are in [{seen[0]:.3g}, {seen[1]:.3g}], far "
            f"outside [{trained[0]:g}, {trained[1]:g}], the range model {model.name!r} was "
            f"trained on: its maps say little about them; {advice} (or --scale auto)")


def scaled(a, model, scale: str) -> np.ndarray:
    """Pixels 0..255 in the range the model takes, by the ``scale`` rule."""
    scale = scale_rule(model, scale)[0]
    if scale == "1/255":
        return a / 255.0
    if scale == "-1..1":
        return a / 127.5 - 1.0
    return a


def ink_note(grey, invert: bool):
    """A warning when the ink (Otsu's class of the light pixels, in the grey image as the model
    will see it) covers most of it: the paper was taken for ink; else None."""
    grey = np.asarray(grey)[..., 0]
    covered = float(np.mean(grey > otsu_threshold(grey)))
    if covered <= 0.5:
        return None
    fix = ("is the digit light on dark? then leave out --invert" if invert else
           "is the digit dark on light paper? then add --invert")
    return f"the ink covers {covered:.0%} of the image: {fix}"
