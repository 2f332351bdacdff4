"""The compiled core, built with AddressSanitizer and UBSan, survives the fixture corpus and a fuzz run.

The fuzz run is time-boxed here (FUZZ_SECONDS, default 45 s); ``make fuzz`` runs it for longer.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import asan
from tests.support.paths import require_native

FUZZ_SECONDS = float(os.environ.get("XTCP_FUZZ_SECONDS", "45"))


@pytest.fixture(scope="module")
def sanitized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The core built with -fsanitize=address,undefined, and the environment that runs it."""
    require_native()
    runtime = asan.sanitizer_runtime()
    if runtime is None:
        reason = "gcc's libasan is not installed"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the sanitizer build", pytrace=False)
        pytest.skip(reason=reason)
    so = asan.build(tmp_path_factory.mktemp("asan"))
    return so, asan.sanitized_env(runtime)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_sanitizer_runtime_catches_an_overread_in_this_setup(sanitized: tuple[Path, dict[str, str]]) -> None:
    """With libasan preloaded and PYTHONMALLOC=malloc a read past a Python buffer is reported: silence means clean."""
    so, env = sanitized
    code = ("import ctypes; b = bytearray(16); "
            "ctypes.string_at(ctypes.addressof((ctypes.c_char * 16).from_buffer(b)), 64)")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode != 0
    assert "heap-buffer-overflow" in r.stderr
    symbols = subprocess.run(["nm", "-D", str(so)], capture_output=True, text=True, check=True).stdout
    assert "__asan_report_load" in symbols and "__ubsan_handle" in symbols


@pytest.mark.slow
@pytest.mark.timeout(int(FUZZ_SECONDS) + 150)
def test_corpus_and_fuzzed_bytes_raise_no_sanitizer_report(sanitized: tuple[Path, dict[str, str]]) -> None:
    """Every fixture and FUZZ_SECONDS of mutated netlink bytes: no report, the scalar walk's problem counts."""
    so, env = sanitized
    r = subprocess.run([sys.executable, "-m", "tests.unit.native.fuzz_harness", "--so", str(so),
                        "--seconds", str(FUZZ_SECONDS)], env=env, capture_output=True, text=True,
                       timeout=FUZZ_SECONDS + 120, check=False)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert "ERROR: AddressSanitizer" not in r.stderr and "runtime error" not in r.stderr
    assert " 0 mismatches" in r.stdout
