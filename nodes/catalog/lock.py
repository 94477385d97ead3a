"""The single-writer lock of a catalog: one ingest at a time writes a catalog; readers never lock.

An advisory ``flock`` on ``<root>/.lock``. The operating system drops it when the process dies, so a killed
ingest never leaves the catalog locked. It is re-entrant within a process (the ingest pipeline holds it for a
whole run and the partition writer takes it again), and not shared between threads. POSIX only.
"""

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

from nodes.catalog.errors import CatalogError
from nodes.catalog.layout import CatalogLayout

_held: dict[Path, list[int]] = {}  # resolved lock path → [fd, depth]


@contextmanager
def catalog_lock(layout: CatalogLayout):
    """Hold the catalog's writer lock for the duration of the block, creating the root if needed.

    Raises:
        CatalogError: another process is writing this catalog.
    """
    layout.root.mkdir(parents=True, exist_ok=True)
    path = layout.lock_path.resolve()
    if path in _held:
        _held[path][1] += 1
        try:
            yield
        finally:
            _held[path][1] -= 1
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise CatalogError(f"catalog {layout.root} is being written by another ingest (lock {path}); try again when it ends") from None
    _held[path] = [fd, 1]
    try:
        yield
    finally:
        del _held[path]
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
