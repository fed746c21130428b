"""Writing a file so that no reader ever sees half of it: ``atomic_write``.

A file written in place is, for a while, half written: a crash leaves it damaged, and another
process reading at that moment gets a truncated file. ``atomic_write`` has the file written under
a temporary name in a new hidden folder beside its destination (the same file system), flushes it
to disk, and moves it over the destination with one ``os.replace``, a single atomic step: a reader
finds the old file or the new one, never a mix. If anything fails before that step, the old file
is left as it was and the temporary folder is removed.

The package writes every file it keeps this way: a model's weights (``models.save``) and the data
sets it downloads (``data.download``).

Example
-------
>>> with atomic_write(Path("results/table.npy")) as temporary:
...     np.save(temporary, table)           # results/table.npy appears only now, complete
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_write(path):
    """A temporary path to write; on leaving the ``with`` block, that file replaces ``path``.

    The temporary file has ``path``'s name, in a new hidden folder next to ``path`` (whose folder
    must exist). When the block ends without an exception, the file is flushed to disk (fsync)
    and renamed over ``path`` in one ``os.replace``. When it raises, ``path`` is not touched. The
    hidden folder is removed in both cases. The new file has the permissions any new file of
    yours has (your umask).

    >>> with atomic_write("my_weights/notes.txt") as temporary:
    ...     temporary.write_text("trained for 3 epochs")
    """
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=path.parent) as folder:
        temporary = Path(folder) / path.name
        yield temporary
        _flush_to_disk(temporary)
        os.replace(temporary, path)


def _flush_to_disk(path: Path):
    """Wait until the file's bytes are on the disk, not only in the system's memory: after a
    power cut, the renamed file must not be empty."""
    with open(path, "rb+") as f:
        os.fsync(f.fileno())
