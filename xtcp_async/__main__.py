"""`python -m xtcp_async` is the same as the `xtcp-async` console script."""

from __future__ import annotations

from xtcp_async.cli import main

raise SystemExit(main())
