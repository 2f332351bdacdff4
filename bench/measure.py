"""Run a child command several times and report what the OS charged it: CPU, wall time, peak RSS.

CPU is user + sys from the child's own rusage (``wait4``), so it counts exactly that process (and
any children it reaped), not the harness; peak RSS is ``ru_maxrss``. The child is started by a tiny C
launcher (spawn.c) so that its ru_maxrss does not inherit this process's (see there why). The machines are shared and
noisy, so every figure comes with its min (the least disturbed run) and its median.
"""

from __future__ import annotations

import functools
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Run:
    """One run of a child: seconds of CPU (user + sys) and wall clock, peak RSS in bytes."""

    cpu_s: float
    user_s: float
    sys_s: float
    wall_s: float
    max_rss_bytes: int
    exit_code: int


@dataclass(frozen=True)
class Stat:
    """Min and median of one figure over the runs."""

    min: float
    median: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        return cls(min(values), statistics.median(values))


@dataclass(frozen=True)
class Summary:
    """All runs of one command, and the min/median of each figure."""

    argv: list[str]
    runs: list[Run]
    cpu_s: Stat
    wall_s: Stat
    max_rss_bytes: Stat

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class ChildFailed(RuntimeError):
    """The measured command exited non-zero: its numbers would measure an error path."""


_SPAWN_SOURCE = Path(__file__).resolve().with_name("spawn.c")
_SPAWN_BINARY = Path(__file__).resolve().parent / "results" / ".bin" / "spawn"


@functools.cache
def spawn_launcher() -> Path | None:
    """The small C launcher (see spawn.c), built on first use; None if there is no C compiler."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if _SPAWN_BINARY.exists() and _SPAWN_BINARY.stat().st_mtime >= _SPAWN_SOURCE.stat().st_mtime:
        return _SPAWN_BINARY
    if cc is None:
        return None
    _SPAWN_BINARY.parent.mkdir(parents=True, exist_ok=True)
    tmp = _SPAWN_BINARY.with_name(f"spawn.{os.getpid()}")
    built = subprocess.run([cc, "-O2", "-o", str(tmp), str(_SPAWN_SOURCE)], capture_output=True, check=False)
    if built.returncode != 0:
        return None
    tmp.replace(_SPAWN_BINARY)
    return _SPAWN_BINARY


def rss_is_exact() -> bool:
    """Whether peak RSS figures are the child's own (launcher built) or include this process's."""
    return spawn_launcher() is not None


def run_once(argv: Sequence[str], *, stdout: int | None = subprocess.DEVNULL,
             stderr: int | None = None, env: dict[str, str] | None = None,
             check: bool = True) -> Run:
    """Run ``argv`` once to completion and return its resource usage."""
    launcher = spawn_launcher()
    if launcher is None:
        return _run_direct(argv, stdout=stdout, stderr=stderr, env=env, check=check)
    with tempfile.NamedTemporaryFile(prefix="xtcp-bench-rusage-", mode="r") as result:
        proc = subprocess.Popen([str(launcher), result.name, *argv], stdin=subprocess.DEVNULL,
                                stdout=stdout, stderr=stderr, env=env)
        try:
            code = proc.wait()
        except BaseException:
            # The launcher's child has PR_SET_PDEATHSIG: killing the launcher kills it too.
            proc.kill()
            proc.wait()
            raise
        fields = result.read().split()
    if len(fields) != 5:
        raise ChildFailed(f"{' '.join(argv)}: the launcher failed (exit {code})")
    user, sys_, maxrss_kib, _status, wall = fields
    if check and code != 0:
        raise ChildFailed(f"{' '.join(argv)} exited with {code}")
    return Run(cpu_s=float(user) + float(sys_), user_s=float(user), sys_s=float(sys_), wall_s=float(wall),
               max_rss_bytes=int(maxrss_kib) * 1024, exit_code=code)


def _run_direct(argv: Sequence[str], *, stdout: int | None, stderr: int | None,
                env: dict[str, str] | None, check: bool) -> Run:
    # Fallback without a C compiler: exact CPU, but ru_maxrss is at least this process's own peak.
    started = time.perf_counter()
    proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, env=env)
    try:
        # wait4 instead of Popen.wait: it is the only way to get this child's own rusage.
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    # Tell Popen the child is reaped, so it does not try (and fail) to wait for it again.
    proc.returncode = code
    if check and code != 0:
        raise ChildFailed(f"{' '.join(argv)} exited with {code}")
    return Run(
        cpu_s=usage.ru_utime + usage.ru_stime,
        user_s=usage.ru_utime,
        sys_s=usage.ru_stime,
        wall_s=wall,
        # Linux reports ru_maxrss in KiB.
        max_rss_bytes=usage.ru_maxrss * 1024,
        exit_code=code,
    )


def measure(argv: Sequence[str], repeat: int, **kwargs: Any) -> Summary:
    """Run ``argv`` ``repeat`` times, one after another, and summarise."""
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    runs = [run_once(argv, **kwargs) for _ in range(repeat)]
    return Summary(
        argv=list(argv),
        runs=runs,
        cpu_s=Stat.of([r.cpu_s for r in runs]),
        wall_s=Stat.of([r.wall_s for r in runs]),
        max_rss_bytes=Stat.of([float(r.max_rss_bytes) for r in runs]),
    )


@dataclass(frozen=True)
class Differential:
    """Steady-state cost per iteration of a command that runs ``k + 1`` iterations vs. one.

    Start-up (interpreter, imports, connecting) is paid once in both, so it cancels out:
    per iteration = (cost of k + 1 − cost of 1) / k, taken on the mins and on the medians.
    """

    k: int
    one: Summary
    many: Summary
    cpu_s: Stat
    wall_s: Stat

    @classmethod
    def of(cls, k: int, one: Summary, many: Summary) -> Differential:
        return cls(
            k=k, one=one, many=many,
            cpu_s=Stat((many.cpu_s.min - one.cpu_s.min) / k,
                       (many.cpu_s.median - one.cpu_s.median) / k),
            wall_s=Stat((many.wall_s.min - one.wall_s.min) / k,
                        (many.wall_s.median - one.wall_s.median) / k),
        )

    def to_json(self) -> dict[str, Any]:
        return {"k": self.k, "per_iteration_cpu_s": asdict(self.cpu_s),
                "per_iteration_wall_s": asdict(self.wall_s),
                "count_1": self.one.to_json(), f"count_{self.k + 1}": self.many.to_json()}


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.measure -n 5 -- ss -tin``: print each run and the min/median."""
    import argparse
    import shlex

    p = argparse.ArgumentParser(prog="python -m bench.measure", description=main.__doc__)
    p.add_argument("-n", "--repeat", type=int, default=5)
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("no command given")
    summary = measure(command, args.repeat)
    print(f"{shlex.join(command)}  ({args.repeat} runs)")
    for i, r in enumerate(summary.runs, 1):
        print(f"  run {i}: cpu {r.cpu_s:.3f} s (user {r.user_s:.3f} + sys {r.sys_s:.3f}), "
              f"wall {r.wall_s:.3f} s, peak RSS {r.max_rss_bytes / 2**20:.1f} MiB")
    print(f"  min/median: cpu {summary.cpu_s.min:.3f}/{summary.cpu_s.median:.3f} s, "
          f"wall {summary.wall_s.min:.3f}/{summary.wall_s.median:.3f} s, "
          f"peak RSS {summary.max_rss_bytes.min / 2**20:.1f}/{summary.max_rss_bytes.median / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
