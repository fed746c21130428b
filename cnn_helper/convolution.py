r"""Hand-made convolution, the teaching tools of the course's earlier lectures.

A 2-D filter F of odd size f x f centred at input location (r, c) gives

.. math::  \mathrm{out}[r, c] = \sum_{i, j} F[i, j] \; \mathrm{img}_{pad}[r + i, c + j]

where img_pad is the input zero-padded by (f - 1) / 2 on every side, so the output has the
input's size (this is cross-correlation, which is what deep-learning "convolution" computes).

The backward passes, computed rather than asserted: ``transposed_convolution`` sends an upstream
gradient back through a convolution (checked against TensorFlow's autodiff, ``input_gradient``),
and ``max_pool_with_switches`` records where each max was so that ``unpool`` can route the
gradient to that location only (``mean_pool`` and ``mean_unpool``: the contrast, no switches).

Example
-------
>>> img = create_img()
>>> out = apply_filt_2d(img, filters()["vertical edge: light to dark"])
>>> out.shape == img.shape
True
"""
from __future__ import annotations

import numpy as np

from . import _checks


def create_img(size: int = 10) -> np.ndarray:
    """A small synthetic grey image: dark background, a light square with a light bar below it.

    It has vertical and horizontal light-to-dark and dark-to-light edges, a light horizontal band
    and an "L"-shaped corner, so each teaching filter finds something.
    """
    if size < 8:
        raise ValueError(f"size must be at least 8 to hold the shapes, got {size}")
    img = np.zeros((size, size), dtype=np.float32)
    q = size // 5
    img[q:3 * q, q:3 * q] = 1.0            # a light square
    img[size - 2 * q:size - q, q:size - q] = 1.0   # a light horizontal band
    return img


def filters() -> dict:
    """The named 3x3 teaching filters.

    - "vertical edge: light to dark"   : +1 left column, -1 right column
    - "horizontal edge: light to dark" : +1 top row, -1 bottom row
    - "horizontal light band"          : +1 middle row, -1/2 the rows around it
    - "vertical light band"            : the transpose
    - "L"                              : +1 on an L (left column and bottom row), -1/2 elsewhere
    """
    vertical = np.array([[1, 0, -1]] * 3, dtype=np.float32)
    band = np.array([[-0.5] * 3, [1] * 3, [-0.5] * 3], dtype=np.float32)
    ell = np.full((3, 3), -0.5, dtype=np.float32)
    ell[:, 0] = 1
    ell[2, :] = 1
    return {"vertical edge: light to dark": vertical,
            "horizontal edge: light to dark": vertical.T.copy(),
            "horizontal light band": band,
            "vertical light band": band.T.copy(),
            "L": ell}


def _check_2d(name, a, dtype=np.float32):
    """``a`` as a 2-D array of ``dtype``; a ValueError for another shape, a TypeError for values
    that are not real numbers."""
    a = np.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (rows, cols), got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise TypeError(f"{name} must be real numbers, got dtype {a.dtype}")
    return a.astype(dtype)


def pad(img, n: int = 1) -> np.ndarray:
    """Zero padding: ``n`` rows/columns of zeros on every side of a 2-D image."""
    img = _check_2d("img", img)
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"padding n must be a non-negative int, got {n!r}")
    return np.pad(img, n, mode="constant")


def apply_filt_2d(img, filt) -> np.ndarray:
    """Apply ``filt`` (odd size f x f) centred at every location of ``img``; same size output.

    Vectorised: every f x f window of the padded image is viewed at once (no copies) and
    multiplied with the filter; out[r, c] is the filter centred at img[r, c].
    """
    img, filt = _check_2d("img", img), _check_odd(_check_2d("filt", filt))
    return _correlate_same(img, filt)


def _check_odd(filt):
    """``filt`` when both its sides are odd (it has a centre); a ValueError otherwise."""
    if filt.shape[0] % 2 == 0 or filt.shape[1] % 2 == 0:
        raise ValueError(f"filter must have odd sides so it has a centre, got shape {filt.shape}")
    return filt


def _correlate_same(img, filt):
    """out[r, c] = sum_ij filt[i, j] img_pad[r + i, c + j], in the dtype of img and filt."""
    padded = np.pad(img, ((filt.shape[0] // 2,), (filt.shape[1] // 2,)), mode="constant")
    windows = np.lib.stride_tricks.sliding_window_view(padded, filt.shape)
    return np.einsum("rcij,ij->rc", windows, filt)


# --------------------------------------------------------------------------- the backward pass


def transposed_convolution(upstream, filt) -> np.ndarray:
    r"""The backward pass of ``apply_filt_2d``: the upstream gradient sent back to the input.

    The forward pass is linear in the image, out = A img, with p, q = (f_rows - 1) / 2,
    (f_cols - 1) / 2 and img = 0 outside the image (the zero padding):

    .. math::  \mathrm{out}[r, c] = \sum_{i, j} F[i, j] \, \mathrm{img}[r + i - p, c + j - q]

    For L = sum(upstream * out) the chain rule gives :math:`\partial L / \partial \mathrm{img} =
    A^T \mathrm{upstream}`: each upstream value u[r, c] goes back through the window it came
    from, weighted by F (a transposed convolution, Zeiler & Fergus' "deconvolution"). Collected
    at input location (a, b) that is a correlation of the zero-padded upstream with the kernel
    rotated by 180 degrees, cropped to the input size:

    .. math::  \frac{\partial L}{\partial \mathrm{img}[a, b]}
               = \sum_{r, c} u[r, c] \, F[a - r + p, b - c + q]
               = \sum_{i, j} F[f_{rows} - 1 - i, f_{cols} - 1 - j] \; u_{pad}[a + i, b + j]

    Computed in float64. ``input_gradient`` gets the same numbers from TensorFlow's autodiff.

    >>> img, filt = create_img(), filters()["L"]
    >>> u = np.ones(img.shape)                    # d L / d out for L = sum(out)
    >>> np.allclose(transposed_convolution(u, filt), input_gradient(img, filt, u))
    True
    """
    upstream = _check_2d("upstream", upstream, np.float64)
    filt = _check_odd(_check_2d("filt", filt, np.float64))
    return _correlate_same(upstream, filt[::-1, ::-1])


def _tf_convolution(img, filt):
    """TensorFlow's conv2d of a (1, H, W, 1) tensor with a 2-D filter, "SAME" zero padding."""
    import tensorflow as tf

    return tf.nn.conv2d(img, tf.constant(filt[:, :, None, None]), strides=1, padding="SAME")


def tf_convolution(img, filt) -> np.ndarray:
    """``apply_filt_2d`` computed by TensorFlow: ``tf.nn.conv2d`` with padding "SAME" and stride 1,
    a cross-correlation like a Keras Conv2D layer (same numbers, float64 here).

    >>> img, filt = create_img(), filters()["L"]
    >>> np.allclose(tf_convolution(img, filt), apply_filt_2d(img, filt))
    True
    """
    img = _check_2d("img", img, np.float64)
    filt = _check_odd(_check_2d("filt", filt, np.float64))
    return _tf_convolution(img[None, :, :, None], filt).numpy()[0, :, :, 0]


def input_gradient(img, filt, upstream) -> np.ndarray:
    r""":math:`\partial L / \partial \mathrm{img}` for L = sum(upstream * conv(img)), by
    ``tf.GradientTape`` on TensorFlow's own convolution (``tf_convolution``), in float64.

    upstream : :math:`\partial L / \partial \mathrm{out}`, the gradient arriving from the layers
               above, the shape of img (the output of a "SAME" convolution)
    It equals ``transposed_convolution(upstream, filt)``: the backward pass of a convolution is a
    transposed convolution.

    >>> img, filt = create_img(), filters()["vertical edge: light to dark"]
    >>> upstream = np.random.default_rng(0).normal(size=img.shape)
    >>> np.allclose(input_gradient(img, filt, upstream), transposed_convolution(upstream, filt))
    True
    """
    import tensorflow as tf

    img = _check_2d("img", img, np.float64)
    filt = _check_odd(_check_2d("filt", filt, np.float64))
    upstream = _check_2d("upstream", upstream, np.float64)
    if upstream.shape != img.shape:
        raise ValueError(f"upstream has shape {upstream.shape} but img has {img.shape}: give one "
                         "gradient per output location (the output has the input's size)")
    x = tf.constant(img[None, :, :, None])
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(upstream[None, :, :, None] * _tf_convolution(x, filt))
    return tape.gradient(loss, x).numpy()[0, :, :, 0]


# --------------------------------------------------------------------------- max pooling


def _pool_size(size, shape) -> int:
    """``size`` as an int window side that fits in an image of ``shape``; an error otherwise."""
    size = _checks.positive_int(size, "size")
    if size > min(shape):
        raise ValueError(f"size {size} is larger than the image {shape}: no window fits")
    return size


def _image_shape(shape) -> tuple:
    """``shape`` as the (rows, cols) ints of the image that was pooled; a ValueError otherwise."""
    shape = tuple(np.atleast_1d(shape).tolist())
    if len(shape) != 2 or not all(isinstance(n, int) for n in shape):
        raise ValueError(f"shape must be the (rows, cols) ints of the pooled image, got {shape}")
    return shape


def max_pool_with_switches(img, size: int = 2):
    r"""Max pooling of non-overlapping size x size windows, and the switches: where each max was.

    .. math::  \mathrm{pooled}[i, j] = \max_{0 \le a, b < s} \mathrm{img}[s i + a, s j + b],
               \qquad \mathrm{switches}[i, j] = (s i + a^*, s j + b^*) \text{ of that max}

    Stride = size and no padding (Keras MaxPooling2D's default, padding "valid"): rows and
    columns past the last full window are dropped. On a tie the switch is the first max in
    row-major order (top row first, then left to right), as np.argmax picks.

    Returns pooled (H // s, W // s) float64 and switches (H // s, W // s, 2) int64, the
    (row, col) in img of each window's max. ``unpool`` uses them on the backward pass.

    >>> pooled, switches = max_pool_with_switches(np.array([[1, 2], [4, 3]]))
    >>> pooled, switches[0, 0]
    (array([[4.]]), array([1, 0]))
    """
    img = _check_2d("img", img, np.float64)
    s = _pool_size(size, img.shape)
    windows = _windows(img, s)
    rows, cols = windows.shape[:2]
    first_max = windows.argmax(axis=-1)
    pooled = np.take_along_axis(windows, first_max[..., None], axis=-1)[..., 0]
    a, b = np.divmod(first_max, s)                          # the max's place inside its window
    switches = np.stack([np.arange(rows)[:, None] * s + a, np.arange(cols) * s + b], axis=-1)
    return pooled, switches.astype(np.int64)


def unpool(values, switches, shape) -> np.ndarray:
    r"""The backward pass of max pooling: each pooled value goes back to its switch location only.

    For L = sum(values * pooled), :math:`\partial \mathrm{pooled}[i, j] / \partial
    \mathrm{img}[a, b]` is 1 where (a, b) = switches[i, j] and 0 elsewhere, so

    .. math::  \frac{\partial L}{\partial \mathrm{img}[a, b]}
               = \sum_{i, j} \mathrm{values}[i, j] \; [\mathrm{switches}[i, j] = (a, b)]

    values   : (H', W'), e.g. the upstream gradient of the pooled map
    switches : (H', W', 2), from ``max_pool_with_switches``
    shape    : (H, W), the shape of the image that was pooled
    Returns (H, W) float64, zero everywhere but at the switches.

    >>> pooled, switches = max_pool_with_switches(np.array([[1, 2], [4, 3]]))
    >>> unpool([[10]], switches, (2, 2))
    array([[ 0.,  0.],
           [10.,  0.]])
    """
    values = _check_2d("values", values, np.float64)
    switches, shape = np.asarray(switches), _image_shape(shape)
    if switches.shape != values.shape + (2,) or not np.issubdtype(switches.dtype, np.integer):
        raise ValueError(f"switches must be integers of shape {values.shape + (2,)} (a (row, col) "
                         f"per value, from max_pool_with_switches), got {switches.dtype} "
                         f"{switches.shape}")
    if np.any(switches < 0) or np.any(switches >= np.asarray(shape)):
        raise ValueError(f"shape {shape} must be the (rows, cols) ints of the pooled image, "
                         f"holding every switch (rows up to {switches[..., 0].max()}, cols up to "
                         f"{switches[..., 1].max()})")
    gradient = np.zeros(shape, np.float64)
    np.add.at(gradient, (switches[..., 0], switches[..., 1]), values)
    return gradient


def _windows(img, s: int):
    """The non-overlapping s x s windows of img (rows past the last full window dropped), as
    (H // s, W // s, s * s): each window in row-major order."""
    rows, cols = img.shape[0] // s, img.shape[1] // s
    windows = img[:rows * s, :cols * s].reshape(rows, s, cols, s).swapaxes(1, 2)
    return windows.reshape(rows, cols, s * s)


def mean_pool(img, size: int = 2) -> np.ndarray:
    r"""Mean (average) pooling of non-overlapping size x size windows, the contrast to max pooling:

    .. math::  \mathrm{pooled}[i, j] = \frac{1}{s^2} \sum_{0 \le a, b < s}
               \mathrm{img}[s i + a, s j + b]

    Stride = size, no padding, like ``max_pool_with_switches``. There are no switches: on the
    backward pass every input of a window gets the same share of its gradient (``mean_unpool``).

    >>> mean_pool(np.array([[1, 2], [4, 3]]))
    array([[2.5]])
    """
    img = _check_2d("img", img, np.float64)
    return _windows(img, _pool_size(size, img.shape)).mean(axis=-1)


def mean_unpool(values, shape, size: int = 2) -> np.ndarray:
    r"""The backward pass of mean pooling: each pooled value shared equally by its window.

    For L = sum(values * pooled), :math:`\partial L / \partial \mathrm{img}[a, b] =
    \mathrm{values}[a // s, b // s] / s^2` inside the windows, 0 in rows and columns past the last
    full window.

    >>> mean_unpool([[10]], (2, 2))
    array([[2.5, 2.5],
           [2.5, 2.5]])
    """
    values = _check_2d("values", values, np.float64)
    shape = _image_shape(shape)
    s = _pool_size(size, shape)
    if values.shape != (shape[0] // s, shape[1] // s):
        raise ValueError(f"values {values.shape} are not the mean pooling of an image of shape "
                         f"{shape} by {s}x{s} windows: give shape = the pooled image's (rows, "
                         "cols) and the same size")
    gradient = np.zeros(shape, np.float64)
    gradient[:values.shape[0] * s, :values.shape[1] * s] = np.kron(values, np.ones((s, s))) / s**2
    return gradient
