"""Where compiled code is cached on disk: ``$TICKLOOM_CACHE`` or ``~/.cache/tickloom``, one folder per kind.

It lives in the lowest room because ops (user indicators, book replay loops) and targets both write there.
"""

import os
from pathlib import Path


def cache_dir(kind: str) -> Path:
    """The cache folder for ``kind`` (e.g. ``kernels``), created when missing."""
    root = Path(os.environ.get("TICKLOOM_CACHE", Path.home() / ".cache" / "tickloom"))
    path = root / kind
    path.mkdir(parents=True, exist_ok=True)
    return path
