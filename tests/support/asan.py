"""Build the compiled core with AddressSanitizer and UBSan, and run Python under them.

A stock CPython is not built with ASan, so its runtime is preloaded (LD_PRELOAD of gcc's
libasan); PYTHONMALLOC=malloc gives every Python object its own malloc block, which ASan guards.
UBSan is linked into the build and stops at the first report (-fno-sanitize-recover).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAN_FLAGS = "-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"


def sanitizer_runtime() -> str | None:
    """gcc's libasan, or None where there is no gcc or no libasan."""
    cc = shutil.which("gcc")
    if cc is None:
        return None
    path = subprocess.run([cc, "-print-file-name=libasan.so"], capture_output=True, text=True,
                          check=False).stdout.strip()
    return path if path and os.path.isabs(path) and os.path.exists(path) else None


def build(out: Path) -> Path:
    """Compile the core with the sanitizers into ``out``; returns the .so."""
    env = dict(os.environ, CC="gcc", CFLAGS=SAN_FLAGS, LDFLAGS="-fsanitize=address,undefined")
    subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--build-lib", str(out / "lib"),
                    "--build-temp", str(out / "tmp"), "--force"], cwd=REPO, env=env, check=True,
                   capture_output=True, text=True)
    (so,) = (out / "lib" / "xtcp_async").glob("_fastcore*.so")
    return so


def sanitized_env(runtime: str) -> dict[str, str]:
    """The environment for a Python child that loads the sanitized core."""
    env = dict(os.environ)
    env.update(LD_PRELOAD=runtime, PYTHONMALLOC="malloc",
               # CPython itself leaks by design at exit; leaks are not what this looks for.
               ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1",
               UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])))
    return env
