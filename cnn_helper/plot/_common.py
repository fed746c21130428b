"""What the figure modules share besides drawing (private): checks of what a figure function is
given, and the small conversions behind their tiles and titles.

Its names have no underscore: they are what this private module offers the rest of ``plot``.
It imports no other figure module, so every one of them can import it.
"""
from __future__ import annotations

import textwrap

import matplotlib
import numpy as np

from .. import _checks


def describe(value) -> str:
    """What ``value`` is, in a few words, for an error message: an array's shape, a dict's keys,
    otherwise its type."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if isinstance(value, dict):
        return f"a dict with keys {list(value)[:5]}"
    return f"a {type(value).__name__}"


def check_result(value, name: str, kind: str, fields, made_by: str, hint=None):
    """``value`` when it has the ``fields`` of a ``kind`` result; otherwise a TypeError naming
    what it got, the function that makes a ``kind``, and ``hint`` (what to do instead)."""
    if all(hasattr(value, field) for field in fields):
        return value
    article = "an" if kind[0] in "AEIOU" else "a"
    raise TypeError(f"{name} must be {article} {kind} (from {made_by}), got {describe(value)}"
                    + (f"; {hint}" if hint else ""))


def image_array(x, name: str = "x") -> np.ndarray:
    """``x`` as an array of numbers to draw: a dataset, an (images, labels) pair or a dict is a
    TypeError saying what to give (``_checks.array_of``)."""
    x = _checks.array_of(x, name)
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise TypeError(f"{name} has dtype {x.dtype}; give numbers to draw")
    return x


def squeeze_image(img, name: str = "img") -> np.ndarray:
    """(H, W, 1) -> (H, W); (H, W) and (H, W, 3) stay; another shape is an error naming it."""
    img = image_array(img, name)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim not in (2, 3):
        raise ValueError(f"cannot draw an array of shape {img.shape} as an image")
    return img


def rescale(values, vmin=None, vmax=None) -> np.ndarray:
    """Values mapped linearly from [vmin, vmax] (default: their own min and max) to [0, 1] and
    clipped: how a colour image is displayed (all 0 when the range is empty)."""
    values = np.asarray(values, dtype=float)
    lo = float(values.min()) if vmin is None else float(vmin)
    hi = float(values.max()) if vmax is None else float(vmax)
    if hi <= lo:
        return np.zeros_like(values)
    return np.clip((values - lo) / (hi - lo), 0.0, 1.0)


def display_colour(value, vmin, vmax, cmap: str):
    """The RGB colour ``core.show_image(..., cmap, vmin, vmax)`` gives a pixel holding ``value``
    (one number per channel): grey through ``cmap``, colour by the same ``rescale`` as the
    image."""
    value = np.asarray(value, dtype=float).ravel()
    if len(value) == 1:
        norm = matplotlib.colors.Normalize(vmin, vmax, clip=True)
        return matplotlib.colormaps[cmap](norm(value[0]))[:3]
    return tuple(rescale(value, vmin, vmax))


def value_text(v) -> str:
    """A value short enough for a tile title: 3 decimals in the usual range, else 3 digits."""
    v = float(v)
    return f"{v:.3f}" if 1e-3 <= abs(v) < 100 else f"{v:.3g}"


def fit_text(text: str, width: float, fontsize: float) -> str:
    """``text`` wrapped to lines that fit ``width`` inches at ``fontsize`` points (a character is
    about 0.6 of the font size wide); its own line breaks are kept."""
    chars = max(8, int(width * 72 / (0.6 * fontsize)))
    return "\n".join(textwrap.fill(line, chars) for line in str(text).split("\n"))
