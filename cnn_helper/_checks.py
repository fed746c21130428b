"""Input checks shared by every public function (private).

Each check returns the value in the form the package computes with, or raises a ValueError /
TypeError that names the argument, the value it got and what is allowed. No TensorFlow here: a
student's typo is answered before any graph is built.
"""
from __future__ import annotations

import numbers

import numpy as np

BATCH_SIZE = "auto"
"""The one default ``batch_size`` (images per compiled call) of every method: "auto" takes as many
images as fit in a fixed memory budget of layer outputs (``_graph.batch_size``), so a small CNN
runs in large, fast batches and a 224x224 VGG16 stays under 4 GB. It never changes a result."""


def is_int(value) -> bool:
    """A Python or NumPy integer, but not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_number(value) -> bool:
    """A finite Python or NumPy real number, but not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and \
        not isinstance(value, bool) and bool(np.isfinite(value))


def one_of(value, name: str, allowed) -> str:
    """``value`` when it is one of ``allowed``; a ValueError listing them otherwise."""
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} {value!r} is not one of {allowed}")
    return value


def positive_int(value, name: str) -> int:
    """``value`` as an int >= 1; a ValueError naming ``name`` and the value otherwise."""
    if not is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def batch_size(value):
    """``value`` as a positive int, or "auto"."""
    if value == "auto":
        return value
    if not is_int(value) or value < 1:
        raise ValueError(f"batch_size must be a positive int or 'auto', got {value!r}")
    return int(value)


def seed(value) -> int:
    if not is_int(value) or value < 0:
        raise ValueError(f"seed must be an int >= 0, got {value!r}")
    return int(value)


def non_negative(value, name: str, meaning: str = "") -> float:
    """A finite number >= 0 (``meaning`` explains it in the error)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0{meaning}, got {value!r}")
    return float(value)


def index_tuple(value, name: str = "location") -> tuple:
    """A spatial index (tuple, list or 1-D integer array, e.g. a row of ``locations``) as a tuple
    of Python ints; a TypeError naming ``name`` otherwise."""
    values = value if isinstance(value, (tuple, list)) else np.asarray(value)
    if isinstance(values, np.ndarray):
        if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
            raise TypeError(f"{name} must be a tuple of ints, got {value!r}")
        values = values.tolist()
    if not all(is_int(i) for i in values):
        raise TypeError(f"{name} must be a tuple of ints, got {value!r}")
    return tuple(int(i) for i in values)


def layer_list(layers) -> list:
    """One layer (name or object) or several, as a non-empty list."""
    if isinstance(layers, str) or not hasattr(layers, "__iter__"):
        layers = [layers]
    layers = list(layers)
    if not layers:
        raise ValueError("layers is empty; give one layer name or a list of them")
    return layers


def _shapes(items) -> str:
    """The shapes of a tuple's or list's items, for an error message."""
    return ", ".join(str(np.shape(item)) for item in list(items)[:4]) + \
        (", ..." if len(items) > 4 else "")


def _dataset_advice(x, name: str) -> str:
    """How to take the images out of a tf.data.Dataset ``x`` (read from its element_spec)."""
    spec = x.element_spec
    pairs = isinstance(spec, (tuple, list))
    shape = getattr(spec[0] if pairs else spec, "shape", None)
    batched = shape is not None and shape.rank and shape[0] is None
    part = "element[0]" if pairs else "element"
    return (f"images = np.{'concatenate' if batched else 'stack'}([{part} for element in "
            f"{name}.as_numpy_iterator()])")


def _same_rank_arrays(x) -> bool:
    """Whether ``x`` is a list or tuple of arrays of one rank (2 or more) and different shapes:
    images (or batches) that do not stack, not an (images, labels) pair, whose labels have a
    lower rank than its images."""
    if not isinstance(x, (tuple, list)) or len(x) < 2:
        return False
    try:
        ranks = {np.ndim(item) for item in x}
    except ValueError:                                     # a ragged item
        return False
    return len(ranks) == 1 and ranks.pop() >= 2


def array_of(x, name: str = "x") -> np.ndarray:
    """``x`` as a NumPy array of numbers (an array, a list of images, a tf.Tensor all work).

    A TypeError that says what ``x`` is and how to get the array otherwise: a tf.data.Dataset
    (take its images out), an (images, labels) pair (give the images alone), a dict, None; a
    ValueError for a list of images of different shapes, which cannot be stacked.
    """
    if hasattr(x, "element_spec") and hasattr(x, "cardinality"):          # a tf.data.Dataset
        raise TypeError(f"{name} is a tf.data.Dataset; give an array of images instead, e.g. "
                        f"{_dataset_advice(x, name)} (max_activation.scan also reads a dataset "
                        "batch by batch)")
    if isinstance(x, dict):
        raise TypeError(f"{name} is a dict with keys {list(x)[:5]}; give an array of images")
    try:
        array = np.asarray(x)
    except ValueError:                   # items of different shapes, e.g. (images, labels)
        array = None
    if array is None or array.dtype == object:
        if _same_rank_arrays(x):
            raise ValueError(f"{name} is a {type(x).__name__} of {len(x)} images of different "
                             f"shapes {_shapes(x)}: they cannot be stacked into one batch; give "
                             "one array (N, H, W, C) (np.concatenate joins batches), or a list "
                             "of images of one shape (resize or crop them to the model's input)")
        if isinstance(x, (tuple, list)) and 2 <= len(x) <= 3 and np.ndim(x[0]) >= 3:
            raise TypeError(f"{name} is a {type(x).__name__} of {len(x)} arrays of shapes "
                            f"{_shapes(x)}, like (images, labels); give the images alone: "
                            f"{name}[0]")
        what = f"a {type(x).__name__} of items of shapes {_shapes(x)}" \
            if isinstance(x, (tuple, list)) else f"{type(x).__name__} {x!r:.60}"
        raise TypeError(f"{name} is {what}, not an array of numbers; give a NumPy array of "
                        "images (N, H, W, C)")
    return array


def _integer_advice(x, name: str, model_name: str, integers_ok) -> str:
    """Why integer images are refused and what to give instead, right for the model."""
    lo, hi = (int(x.min()), int(x.max())) if x.size else (0, 0)
    got = f"{name} has dtype {x.dtype}, values in [{lo}, {hi}]"
    fix = (f"if it was trained on [0, 1] images give {name}.astype('float32') / 255, if on "
           f"[0, 255] give {name}.astype('float32') (a keras.applications model: its family's "
           f"preprocess_input({name}))")
    if integers_ok is None:
        return (f"{got}; images must be float. If model {model_name!r} scales its input itself "
                f"(a Rescaling layer at its front) give {name}.astype('float32'); otherwise, "
                + fix)
    return (f"{got}, and model {model_name!r} does not scale its input (no Rescaling or "
            "Normalization layer at its front), so images must be float: " + fix)


def float_images(x, name: str = "x", model_name: str = "", integers_ok=None) -> np.ndarray:
    """``x`` as a float32 array: a ValueError for NaN or inf; for integers, a cast when
    ``integers_ok`` (the model takes them as they are, no scaling), else a TypeError whose advice
    suits the model (see ``images_for``). Other dtypes (bool, str) are a TypeError."""
    x = array_of(x, name)
    if np.issubdtype(x.dtype, np.integer) and integers_ok:
        return x.astype(np.float32)
    if np.issubdtype(x.dtype, np.integer):
        raise TypeError(_integer_advice(x, name, model_name or "the model", integers_ok))
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name} has dtype {x.dtype}; images must be float numbers")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x.astype(np.float32, copy=False)


def fits_shape(shape, expected) -> bool:
    """Whether ``shape`` matches ``expected`` axis by axis (None, on either side, matches any)."""
    return len(shape) == len(expected) and all(
        e is None or s is None or e == s for e, s in zip(expected, shape))


def _shape_advice(shape: tuple, expected: tuple, name: str) -> str:
    """The fix for images of the wrong shape, when it is plain: a missing channel axis (grey
    images (28, 28) for a model of (28, 28, 1)), or images flattened into rows (N, 784)."""
    if expected[-1] == 1 and (fits_shape(shape, expected[:-1])
                              or fits_shape(shape[1:], expected[:-1])):
        return f": add the channel axis, {name}[..., None]"
    if None not in expected and len(shape) == 2 and shape[1] == np.prod(expected):
        return f": unflatten the rows, {name}.reshape(-1, {', '.join(map(str, expected))})"
    return ""


def images_for(x, expected: tuple, model_name: str, name: str = "x", integers_ok=None):
    """Images for a model whose one image has shape ``expected``: (float32 batch, was_single).

    Accepts a batch (N, *expected) or one image (*expected), as an array, a list of images or a
    tensor. ``integers_ok`` says whether the model takes integer images as they are:

    - True  (it scales its input itself: a Rescaling / Normalization layer at its front, or an
      integer Input dtype): integer images are cast to float32, values unchanged;
    - False (it does not): a TypeError saying to divide by 255 if the model was trained on
      [0, 1] images, or only to cast if on [0, 255];
    - None  (not known): a TypeError giving both cases.

    A dataset, an (images, labels) pair or another non-array is a TypeError saying what to give;
    a wrong shape, an empty batch, NaN or inf a ValueError.
    """
    x = array_of(x, name)
    if not np.issubdtype(x.dtype, np.floating):                 # the dtype error before the shape's
        x = float_images(x, name, model_name, integers_ok)
    single = fits_shape(x.shape, expected)
    if not single and not fits_shape(x.shape[1:], expected):
        raise ValueError(f"{name} has shape {x.shape}; model {model_name!r} expects images of "
                         f"shape (N, {', '.join(str(e) for e in expected)}) or one image of shape "
                         f"{expected}{_shape_advice(x.shape, expected, name)}")
    if not single and len(x) == 0:
        raise ValueError(f"{name} is empty (shape {x.shape}): give at least one image")
    x = float_images(x, name, model_name, integers_ok)
    return (x[None] if single else x), single


def labels_of(y, name: str = "y") -> np.ndarray:
    """One label per example (N,): ``y`` as given, a column (N, 1), or one-hot rows (N, C) as
    their argmax. Rows that are not one-hot (probabilities, smoothed labels) are a ValueError."""
    y = array_of(y, name)
    if y.ndim == 2 and y.shape[1] == 1:
        return y[:, 0]
    if y.ndim == 2:
        one_hot = np.isin(y, (0, 1)).all() and np.all(y.sum(axis=1) == 1)
        if not one_hot:
            raise ValueError(f"{name} has shape {y.shape} but its rows are not one-hot; give one "
                             f"label per example, e.g. {name}.argmax(axis=1)")
        return y.argmax(axis=1)
    if y.ndim != 1:
        raise ValueError(f"{name} has shape {y.shape}; give one label per example (N,)")
    return y


def _kind(label) -> str:
    """What a label is as far as ``==`` goes: 'string', 'bytes', 'number' (bool too) or 'other'.
    Labels of two kinds are never equal: 8 != '8' != b'8'."""
    if isinstance(label, str):
        return "string"
    if isinstance(label, bytes):
        return "bytes"
    return "number" if isinstance(label, (numbers.Number, np.bool_)) else "other"


_KIND_WORDS = {"string": ("strings", "a string", "str"), "bytes": ("bytes", "bytes", "bytes"),
               "number": ("integers", "a number", "int")}
"""Per kind of label: the words for many and for one, and the type that converts to it."""


def _as_kind(label, kind: str):
    """``label`` written as a label of ``kind`` (8, '8', b'8'), or None when it cannot be."""
    text = label.decode(errors="replace") if isinstance(label, bytes) else str(label)
    if kind == "number":
        return int(text) if text.lstrip("+-").isdigit() else None
    return text if kind == "string" else text.encode()


def labels_present(y) -> list:
    """The distinct labels of ``y`` (N,), sorted, as Python values (to show in a message)."""
    try:
        return np.unique(y).tolist()
    except TypeError:                                      # an object array of mixed kinds
        return sorted(set(np.asarray(y).tolist()), key=repr)


def _kind_advice(label, y_kind: str, present: list, name: str, wanted: str, scalar: bool) -> str:
    """Why ``label`` matches none of the labels ``present`` in y (they are of kind ``y_kind``),
    and how to ask for it: the same label in y's kind when y has it, or y converted."""
    kind = _kind(label)
    many = ("numbers" if y_kind == "number" and not all(isinstance(v, int) for v in present)
            else _KIND_WORDS[y_kind][0])
    one = "an int" if isinstance(label, numbers.Integral) else _KIND_WORDS[kind][1]
    shown = ", ".join(map(repr, present[:2])) + (", ..." if len(present) > 2 else "")
    said = f"{wanted}={label!r} is {one}" if scalar else f"{wanted} holds {label!r}, {one}"
    twin = _as_kind(label, y_kind)
    fix = (f"pass {wanted + '=' if scalar else ''}{twin!r}" if twin in present
           else f"pass one of the labels present: {present}")
    if y_kind != "number" and all(_as_kind(v, kind) is not None for v in present):
        fix += f" or {name} as {_KIND_WORDS[kind][0]} ({name}.astype({_KIND_WORDS[kind][2]}))"
    return f"{name} holds {many} ({shown}); {said}: {fix}"


def wanted_labels(y, labels, name: str = "y", wanted: str = "labels") -> list:
    """``labels`` (one label or a list of them) as a list, checked against the labels of ``y``.

    A label of another kind than y's can never equal one of them: an int where y holds strings
    (read from a CSV file, ``y.astype(str)``), a string where y holds ints. That is a TypeError
    saying so and how to make them one kind, not "no example has label 8" beside a list showing 8.

    >>> wanted_labels(y.astype(str), 8)
    TypeError: y holds strings ('0', '1', ...); labels=8 is an int: pass labels='8' or y as ...
    """
    labels = labels.tolist() if isinstance(labels, np.ndarray) else labels
    scalar = isinstance(labels, (str, bytes)) or not hasattr(labels, "__iter__")
    chosen = [labels] if scalar else list(labels)
    present = labels_present(y)
    y_kinds = {_kind(v) for v in present}
    y_kind = y_kinds.pop() if len(y_kinds) == 1 else "other"        # "other": mixed or none
    for label in chosen:
        if "other" not in (y_kind, _kind(label)) and _kind(label) != y_kind:
            raise TypeError(_kind_advice(label, y_kind, present, name, wanted, scalar))
    return chosen


def batches(n: int, size: int):
    """Slices [start, stop) covering range(n) in chunks of ``size``."""
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def top_count(count, n=None, what: str = "the data") -> int:
    """``count`` (how many top examples to keep) as an int: at least 1 and, when the number of
    examples ``n`` of ``what`` is given, at most n."""
    if not is_int(count):
        raise TypeError(f"count must be an int, got {count!r}")
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if n is not None and count > n:
        raise ValueError(f"count={count} is larger than {what}, which has {n} examples")
    return int(count)


def example_ids(ids, n: int) -> np.ndarray:
    """``ids`` as an int64 vector: one distinct integer per example of n."""
    ids = np.asarray(ids)
    if ids.ndim != 1 or len(ids) != n:
        raise ValueError(f"ids must hold one id per example: a vector of length {n}, got shape "
                         f"{ids.shape}")
    if n and not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"ids must be integers (the examples' own indices), got dtype {ids.dtype}")
    if len(np.unique(ids)) != n:
        raise ValueError("ids must be distinct: an id names one example of the data set")
    return ids.astype(np.int64)
