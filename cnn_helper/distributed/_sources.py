"""What ``cnn_helper.distributed`` sends to its workers: the model (the bytes of a .keras file, or
a builder function, loaded once by each worker) and the data, as a Ray dataset with an image and
an id column cut into blocks (from a Ray dataset, an array of images, or memory-mapped .npy
files read one after the other).

A private module: ``model_spec``, ``load_model`` and ``dataset`` are what ``scan`` and
``explain`` share; the column names and ``BLOCKS_PER_WORKER`` are public as
``cnn_helper.distributed.IMAGE_COLUMN`` etc.
"""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np

from .. import _checks
from . import _cluster

IMAGE_COLUMN, ID_COLUMN = "image", "id"
BLOCKS_PER_WORKER = 4        # arrays and files are cut into about this many blocks per worker


# --------------------------------------------------------------------------- the model


def model_spec(model):
    """(the model here, on the driver; what ships to the workers: ("keras", the bytes of a
    .keras file) or ("builder", a zero-argument function)). The user's model is only saved; a
    file is read by the package's one loader, ``models.load``."""
    import keras

    from .. import models

    if isinstance(model, keras.Model):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.keras"
            try:
                model.save(path)
            except Exception as e:
                raise TypeError(f"model {model.name!r} cannot be saved as a .keras file to ship "
                                f"it to the workers ({e}); give a builder instead: a function "
                                "without arguments that returns the model") from None
            return model, ("keras", path.read_bytes())
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if path.suffix != ".keras" or not path.is_file():
            raise ValueError(f"model {str(model)!r} is not a .keras file; give a Keras model, the "
                             "path of a file saved with model.save('name.keras'), or a builder")
        return models.load(path), ("keras", path.read_bytes())
    if callable(model):
        built = model()
        if not isinstance(built, keras.Model):
            raise TypeError(f"the builder {model!r} returned {type(built).__name__}, not a Keras "
                            "model")
        return built, ("builder", model)
    raise TypeError(f"model must be a Keras model, the path of a .keras file or a builder (a "
                    f"function without arguments that returns the model), got {model!r}")


def load_model(spec):
    """The model a worker uses, from what ``model_spec`` shipped (a file: ``models.load``)."""
    from .. import models

    kind, value = spec
    if kind == "builder":
        return value()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        path.write_bytes(value)
        return models.load(path)


# --------------------------------------------------------------------------- the data


def _check_ray_dataset(ds, ids, image_column: str, id_column: str):
    """A ray.data.Dataset with both columns (ids come from its id column)."""
    if ids is not None:
        raise ValueError(f"ids come from the dataset's column {id_column!r}; do not give ids")
    columns = ds.columns()
    missing = [c for c in (image_column, id_column) if c not in columns]
    if missing:
        raise ValueError(f"the dataset has no column {missing[0]!r}; its columns are {columns}. "
                         "Name its image and id columns: image_column=..., id_column=...")
    return ds


def _arrays(data, ids):
    """(images, ids) of an array or a list of .npy files (read lazily: memory-mapped)."""
    if isinstance(data, (list, tuple)) and data and all(
            isinstance(p, (str, os.PathLike)) for p in data):
        for path in data:
            if Path(path).suffix != ".npy" or not Path(path).is_file():
                raise ValueError(f"{str(path)!r} is not a .npy file")
        parts = [np.load(path, mmap_mode="r") for path in data]
        if len({part.shape[1:] for part in parts}) != 1:
            raise ValueError(f"the .npy files hold images of different shapes "
                             f"{sorted({part.shape[1:] for part in parts})}")
        x = _ConcatenatedFiles(parts)
    else:
        x = np.asarray(data)
        if x.ndim < 2:
            raise ValueError(f"data must be images (N, H, W, C), a list of .npy files or a "
                             f"ray.data.Dataset, got an array of shape {x.shape}")
    ids = np.arange(len(x)) if ids is None else _checks.example_ids(ids, len(x))
    return x, ids


class _ConcatenatedFiles:
    """Several memory-mapped arrays read as one along the first axis (only slices are read)."""

    def __init__(self, parts):
        self.parts, self.starts = parts, np.cumsum([0] + [len(p) for p in parts])

    def __len__(self):
        return int(self.starts[-1])

    def __getitem__(self, where: slice) -> np.ndarray:
        pieces = [p[max(where.start - s, 0):max(where.stop - s, 0)]
                  for p, s in zip(self.parts, self.starts)]
        return np.concatenate([np.asarray(p) for p in pieces if len(p)])


def dataset(data, ids, image_column, id_column, block_size, n_workers):
    """The data as a ray.data.Dataset with image and id columns, cut into blocks."""
    ray = _cluster.import_ray()
    if isinstance(data, ray.data.Dataset):
        return _check_ray_dataset(data, ids, image_column, id_column)
    from ray.data.block import BlockAccessor

    x, ids = _arrays(data, ids)
    if len(x) == 0:
        raise ValueError("data is empty: give at least one image")
    if block_size == "auto":
        block_size = math.ceil(len(x) / (BLOCKS_PER_WORKER * n_workers))
    blocks = [BlockAccessor.batch_to_block({image_column: x[s], id_column: ids[s]})
              for s in _checks.batches(len(x), block_size)]
    return ray.data.from_arrow(blocks)
