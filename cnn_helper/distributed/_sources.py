"""What ``cnn_helper.distributed`` sends to its workers: the model (the bytes of a .keras file, or
a builder function, loaded once by each worker; a digest of what it computes names it) and the
data, in blocks with an image and an id column (from a Ray dataset, an array of images, or
memory-mapped .npy files read one after the other).

A private module: ``ModelSource``, ``load_model``, ``data_blocks`` and ``columns`` are what
``scan``, ``explain`` and the pool of workers share; the column names and ``BLOCKS_PER_WORKER``
are public as ``cnn_helper.distributed.IMAGE_COLUMN`` etc.
"""
from __future__ import annotations

import hashlib
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

from .. import _checks
from . import _cluster

IMAGE_COLUMN, ID_COLUMN = "image", "id"
BLOCKS_PER_WORKER = 4        # arrays and files are cut into about this many blocks per worker


# --------------------------------------------------------------------------- the model


def digest(array) -> str:
    """A digest (SHA-1) of an array's bytes, shape and dtype: equal digests, equal arrays."""
    array = np.ascontiguousarray(array)
    h = hashlib.sha1(f"{array.shape} {array.dtype.str}".encode(), usedforsecurity=False)
    h.update(memoryview(array).cast("B"))
    return h.hexdigest()


def model_digest(model) -> str:
    """A digest of what ``model`` computes: its architecture (its JSON config, or its class and
    layers where it has none) and the value of every weight. A weight changed in place changes
    it, so workers keyed by it never compute with stale weights."""
    try:
        architecture = model.to_json()
    except Exception:       # a subclassed model without get_config
        layers = [type(layer).__name__ for layer in model.layers]
        architecture = f"{type(model).__qualname__} {layers}"
    h = hashlib.sha1(architecture.encode(), usedforsecurity=False)
    for weight in model.weights:
        h.update(f"{weight.path} {digest(weight.numpy())}".encode())
    return h.hexdigest()


class ModelSource:
    """The model as the workers get it. ``model``: the model here, on the driver; ``key``: what
    names it in the pool of workers (a digest of its architecture and weights; for a builder,
    the builder too); ``spec()``: what ships ("keras", the bytes of a .keras file) or
    ("builder", a zero-argument function), made only when workers start. The user's model is
    only saved; a file is read by the package's one loader, ``models.load``."""

    def __init__(self, model):
        import keras

        from .. import models

        self._spec = None
        if isinstance(model, keras.Model):
            self.model = model
        elif isinstance(model, (str, os.PathLike)):
            path = Path(model)
            if path.suffix != ".keras" or not path.is_file():
                raise ValueError(f"model {str(model)!r} is not a .keras file; give a Keras model, "
                                 "the path of a file saved with model.save('name.keras'), or a "
                                 "builder")
            self.model, self._spec = models.load(path), ("keras", path.read_bytes())
        elif callable(model):
            self.model, self._spec = model(), ("builder", model)
            if not isinstance(self.model, keras.Model):
                raise TypeError(f"the builder {model!r} returned {type(self.model).__name__}, not "
                                "a Keras model")
        else:
            raise TypeError(f"model must be a Keras model, the path of a .keras file or a builder "
                            f"(a function without arguments that returns the model), got {model!r}")
        builder = model if self._spec and self._spec[0] == "builder" else None
        self.key = (model_digest(self.model), builder)

    def spec(self) -> tuple:
        """What ships to the workers (a Keras model is saved to a .keras file now)."""
        if self._spec is None:
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "model.keras"
                try:
                    self.model.save(path)
                except Exception as e:
                    raise TypeError(f"model {self.model.name!r} cannot be saved as a .keras file "
                                    f"to ship it to the workers ({e}); give a builder instead: a "
                                    "function without arguments that returns the model") from None
                self._spec = ("keras", path.read_bytes())
        return self._spec


def load_model(spec):
    """The model a worker uses, from what ``ModelSource.spec`` shipped (a file: ``models.load``)."""
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


@dataclass
class DataBlocks:
    """The data as the workers read it. ``blocks`` yields (block, start, stop): a block is a dict
    of columns or a Ray dataset's block (or the ObjectRef of either), of which the worker takes
    the rows start:stop (None: all). ``first()``: the first image, as a batch of one."""

    n_examples: Optional[int]       # None for a Ray dataset (known only once it has run)
    n_blocks: Optional[int]
    blocks: Iterator
    first: Callable


_STORED = {}    # at most one entry: {(Ray session, columns, digests of images and ids): ObjectRef}


def stored(x: np.ndarray, ids: np.ndarray, columns: tuple):
    """The ObjectRef of {image column: x, id column: ids} in Ray's object store, put there once:
    a later call with equal arrays (equal digests: safe even if the array was changed in place and
    changed back) gets the same object. One array is kept (``forget_stored`` drops it)."""
    ray = _cluster.import_ray()
    key = (_cluster.session(), columns, digest(x), digest(ids))
    if key not in _STORED:
        forget_stored()
        _STORED[key] = ray.put(dict(zip(columns, (x, ids))))
    return _STORED[key]


def forget_stored():
    """Drop the array kept in the object store by ``stored`` (Ray frees it)."""
    _STORED.clear()


def _dataset_blocks(ds):
    """(block ref, start, stop) of each block of a Ray dataset, as its execution streams them."""
    for bundle in ds.iter_internal_ref_bundles():
        slices = getattr(bundle, "slices", None) or [None] * len(bundle.block_refs)
        for ref, piece in zip(bundle.block_refs, slices):
            yield (ref, None, None) if piece is None else (ref, piece.start_offset,
                                                           piece.end_offset)


def data_blocks(data, ids, columns: tuple, block_size, n_workers) -> DataBlocks:
    """The data cut into blocks. An array goes into the object store once (``stored``), its
    blocks are row ranges of it; .npy files are read a block at a time; a Ray dataset keeps its
    own blocks."""
    ray = _cluster.import_ray()
    if isinstance(data, ray.data.Dataset):
        ds = _check_ray_dataset(data, ids, *columns)
        return DataBlocks(None, None, _dataset_blocks(ds),
                          lambda: ds.take_batch(1, batch_format="numpy")[columns[0]])
    x, ids = _arrays(data, ids)
    if len(x) == 0:
        raise ValueError("data is empty: give at least one image")
    if block_size == "auto":
        block_size = math.ceil(len(x) / (BLOCKS_PER_WORKER * n_workers))
    cuts = list(_checks.batches(len(x), block_size))
    if isinstance(x, np.ndarray):
        whole = stored(x, ids, columns)
        blocks = ((whole, s.start, s.stop) for s in cuts)
    else:
        blocks = ((ray.put(dict(zip(columns, (x[s], ids[s])))), None, None) for s in cuts)
    return DataBlocks(len(x), len(cuts), blocks, lambda: x[0:1])


def columns(block, image_column: str, id_column: str, start=None, stop=None) -> tuple:
    """(images, ids) of rows start:stop of a block (a dict of columns or a Ray dataset's block)."""
    if not isinstance(block, dict):
        from ray.data.block import BlockAccessor

        block = BlockAccessor.for_block(block).to_batch_format("numpy")
    return block[image_column][start:stop], block[id_column][start:stop]
