r"""Scans and explanations over a whole data set on Ray: many workers, one machine or a cluster.

``max_activation.scan`` keeps only the running top ``count`` of each channel, so its memory does not
grow with the data, but it runs in one process. Zeiler & Fergus scanned all of ImageNet's training
set for every unit; for a data set of that size, this module spreads the same work over the workers
of a Ray cluster (offline batch inference on a pool of Ray actors):

1. The model travels to every worker as a ``.keras`` file (or a builder function builds it there):
   one replica per worker, loaded once, its scan step compiled once. The workers are kept for
   the later scans and explanations of the same model in this Python process (a digest of its
   architecture and weights names it: a changed model gets new workers), so only the first call
   waits for them to start; ``shutdown_workers()`` ends them (``ray.shutdown()`` too).
2. Each block of the data set is scanned by ``max_activation.scan_part``, the package's own
   compiled step, with the block's example ids: a partial result :math:`S_b` (top ``count`` High
   and Low of every channel, over the block's examples).
3. The driver merges the partial results as they arrive with ``max_activation.merge``:
   :math:`S = S_1 \oplus S_2 \oplus \dots`, associative and commutative, so neither the order
   the blocks finish in nor the way they are grouped changes anything. The result is the one
   ``max_activation.scan`` gives on the same data, its indices the data set's own ids.

Ray restarts a worker that dies and sends its blocks again; a block's partial result is a pure
function of the block, so a retry changes nothing.

Data: a ``ray.data.Dataset`` with an image column and an id column (``image_column="image"``,
``id_column="id"``), or an array of images (ids: their positions, or ``ids=``), or a list of
``.npy`` files (ids: positions in the files taken one after the other).

Example
-------
>>> from cnn_helper import distributed
>>> scans = distributed.scan(model, x_train, ["conv1", "conv2", "conv3"], count=9)  # local Ray
>>> scans["conv2"].channel(5).high.indices             # as max_activation.scan gives them
>>> files = distributed.explain(model, x_train, "gradient", "maps/", target=3)
>>> ids, maps = distributed.read_explanations("maps/")
>>> distributed.shutdown_workers()                     # the workers' memory back

The modules
-----------
- :mod:`.scanning` : :func:`scan`, the distributed ``max_activation.scan`` (workers and merge)
- :mod:`.explaining` : :func:`explain`, an attribution method written to one file per block, and
  :func:`read_explanations`, which reads the files back
- ``_cluster`` (private): Ray imported when used, :func:`connect`, how many workers and of what
- ``_pool`` (private): the pool of workers kept between calls, the blocks sent to them, and
  :func:`shutdown_workers`
- ``_sources`` (private): the model shipped to the workers and the data in blocks (from a Ray
  dataset, an array or .npy files)

Needs the ``ray`` extra: ``pip install cnn_helper[ray]``.
"""
from __future__ import annotations

from ._cluster import connect
from ._pool import shutdown_workers
from ._sources import BLOCKS_PER_WORKER, ID_COLUMN, IMAGE_COLUMN
from .explaining import FORMATS, explain, read_explanations
from .scanning import scan

__all__ = ["scan", "explain", "read_explanations", "connect", "shutdown_workers", "IMAGE_COLUMN",
           "ID_COLUMN", "BLOCKS_PER_WORKER", "FORMATS"]
