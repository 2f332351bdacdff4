"""Feed the compiled core (a sanitizer build) the fixture corpus and mutated netlink bytes.

Run by tests/unit/native/test_sanitized.py and ``make fuzz`` in a child process that has libasan
preloaded (a Python host is not built with ASan, so the runtime must come first) and
PYTHONMALLOC=malloc (so Python's small objects get ASan's red zones instead of pymalloc arenas)::

    python -m tests.unit.native.fuzz_harness --so build/asan/.../_fastcore*.so --seconds 60

Every input is decoded by the core and by the scalar walk (the specification): columns, problem
counts, errors and flags must match, and the core encodes the batch both ways. Any sanitizer
report aborts the process; a mismatch exits 1. Mutations: cuts anywhere, header and attribute
lengths rewritten (tiny, oversized, off by a few), random bytes, bit flips, splices of other
chunks, and wholly random chunks.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import struct
import sys
import time
from pathlib import Path

from tests.support.fixtures import fixtures_dir, is_zeroed, iter_mlab_messages, iter_pcap_netlink

DATA = Path(__file__).resolve().parents[2] / "data"


def _load_core(so: Path) -> None:
    spec = importlib.util.spec_from_file_location("xtcp_async._fastcore", so)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules["xtcp_async._fastcore"] = mod


def corpus() -> list[list[bytes]]:
    """Every fixture capture as its chunks, m-lab's messages, and the 6.18 capture."""
    out: list[list[bytes]] = []
    for p in sorted((fixtures_dir() / "xtcp2").glob("*/*.pcap")):
        if not is_zeroed(p):
            out.append(list(iter_pcap_netlink(p)))
    out.append(list(iter_mlab_messages()))
    spec = importlib.util.spec_from_file_location("record_capture", DATA / "record_capture.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out.append(mod.read_chunks(DATA / "kernel_6_18_dump.bin"))
    return [c for c in out if c]


def mutate(rng: random.Random, chunks: list[bytes]) -> list[bytes]:
    """A few of the chunks changed in ways a broken kernel, capture or buffer could."""
    chunks = list(chunks[: rng.randint(1, 6)])
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(chunks))
        raw = bytearray(chunks[i])
        pos = rng.randrange(len(raw)) & ~3 if raw and rng.random() < 0.6 else rng.randrange(len(raw) + 1)
        kind = rng.randrange(7)
        if kind == 0:
            del raw[pos:]  # truncated
        elif kind == 1 and pos + 4 <= len(raw):  # a message length: tiny, huge, or a few off
            raw[pos:pos + 4] = struct.pack("<I", rng.choice([0, 1, 15, 16, 87, 88, 0xFFFF, 0xFFFFFFFF,
                                                             len(raw) - pos + rng.randint(-8, 8) & 0xFFFFFFFF]))
        elif kind == 2 and pos + 2 <= len(raw):  # an attribute length
            raw[pos:pos + 2] = struct.pack("<H", rng.choice([0, 3, 4, 5, 0x7FFF, 0xFFFF, rng.randrange(0x10000)]))
        elif kind == 3:
            raw[pos:pos + 8] = rng.randbytes(min(8, len(raw) - pos))
        elif kind == 4 and raw:
            raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
        elif kind == 5:
            donor = chunks[rng.randrange(len(chunks))]
            s = rng.randrange(len(donor) + 1)
            raw[pos:pos] = donor[s:s + rng.randint(0, 600)]  # oversized: spliced
        else:
            raw = bytearray(rng.randbytes(rng.randint(0, 256)))
        chunks[i] = bytes(raw)
    # bytearray copies: each chunk its own malloc block, so ASan sees a read past its end.
    return [bytes(bytearray(c)) for c in chunks]


def check(chunks: list[bytes]) -> str | None:
    """None when the core agrees with the scalar walk on ``chunks``; else what differed."""
    from tests.support.paths import assert_same_result
    from xtcp_async.encode import encode_rows
    from xtcp_async.netlink.decode import decode_messages

    ref = decode_messages(chunks, path="scalar")
    got = decode_messages(chunks, path="c")
    try:
        assert_same_result(got, ref, "c vs scalar")
    except AssertionError as exc:
        return str(exc)[:500]
    for fmt in ("protobuf-list", "protobuf-single", "jsonl"):
        encode_rows(got.batch, fmt, path="c")
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--so", type=Path, help="the core to load (a sanitizer build); default: the installed one")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=None)
    args = p.parse_args(argv)
    if args.so:
        _load_core(args.so)
    from xtcp_async import native

    if native.CORE is None:
        print(f"fuzz: no compiled core: {native.WHY_NOT}", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    base = corpus()
    bad = 0
    for chunks in base:
        if (why := check(chunks)) is not None:
            print(f"fuzz: corpus input differs: {why}", file=sys.stderr)
            bad += 1
    deadline = time.monotonic() + args.seconds
    runs = 0
    while time.monotonic() < deadline:
        chunks = mutate(rng, rng.choice(base))
        runs += 1
        if (why := check(chunks)) is not None:
            print(f"fuzz: mutated input {runs} (seed {seed}) differs: {why}", file=sys.stderr)
            bad += 1
    print(f"fuzz: seed {seed}, {len(base)} corpus inputs and {runs} mutated inputs, {bad} mismatches")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
