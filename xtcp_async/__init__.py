"""xtcp_async: stream every TCP socket's kernel state as xtcp2-compatible records."""

from __future__ import annotations

import os

# issue 13: the service does no linear algebra, but numpy's OpenBLAS starts a worker thread per
# core at import (~60 ms CPU of start-up here, and idle spinning). Set before numpy is imported;
# an explicit setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"

__all__ = ["__version__"]
