"""DiagSocket against the real kernel, and its reply checks on crafted bytes."""

from __future__ import annotations

import errno
import socket

import pytest

from tests.unit.netlink.synth import diag_msg, done_msg, error_msg
from xtcp_async.errors import NetlinkError
from xtcp_async.netlink import constants as c
from xtcp_async.netlink.decode import decode_messages
from xtcp_async.netlink.socket import DiagSocket, DumpStatus


async def test_dump_returns_this_process_listener() -> None:
    """A dump of AF_INET listeners includes a socket this test is listening on, then ends at DONE."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        sock = DiagSocket(max_recvs_per_callback=1)
        status = DumpStatus(family=c.AF_INET)
        chunks = [ch async for ch in sock.dump(c.AF_INET, states=1 << c.TCP_STATES["listen"], ext=c.EXT_ALL,
                                               timeout_s=5, status=status)]
        sock.close()
    assert status.done and status.bytes_read == sum(len(ch.data) for ch in chunks)
    recs = decode_messages([ch.data for ch in chunks]).batch.to_records()
    assert any(r["inet_diag_msg_socket_source_port"] == port for r in recs)


async def test_kernel_error_is_raised_with_its_errno() -> None:
    """A dump the kernel refuses (an unknown protocol) raises NetlinkError carrying the errno."""
    sock = DiagSocket()
    try:
        with pytest.raises(NetlinkError) as info:
            async for _ in sock.dump(c.AF_INET, states=c.ALL_STATES_MASK, ext=0, timeout_s=5, protocol=253):
                pass
    finally:
        sock.close()
    assert info.value.errno == errno.ENOENT


def test_check_counts_stale_replies_and_flags_intr_and_done() -> None:
    """A chunk with another seq is stale and dropped; ours notes DUMP_INTR and a trailing DONE."""
    st = DumpStatus(family=c.AF_INET)
    failure: list[BaseException] = []
    assert not DiagSocket._check(diag_msg(seq=6) + diag_msg(seq=6), 7, 0, st, failure)
    assert st.stale_messages == 1
    data = diag_msg(seq=7, flags=c.NLM_F_MULTI | c.NLM_F_DUMP_INTR) + diag_msg(seq=7) + done_msg(seq=7)
    assert DiagSocket._check(data, 7, 0, st, failure)
    assert (st.interrupted, st.done) == (True, True)
    assert not failure


def test_check_sees_done_alone_and_not_in_the_middle() -> None:
    """DONE as a chunk of its own ends the dump; a chunk of sockets only does not."""
    st = DumpStatus(family=c.AF_INET)
    assert DiagSocket._check(diag_msg(seq=7) * 3, 7, 0, st, [])
    assert not st.done
    assert DiagSocket._check(done_msg(seq=7), 7, 0, st, [])
    assert st.done


def test_error_inside_done_fails_the_dump() -> None:
    """A negative error code carried by NLMSG_DONE becomes a NetlinkError."""
    import struct

    done_with_error = struct.pack("<IHHIIi", 20, c.NLMSG_DONE, c.NLM_F_MULTI, 7, 0, -errno.EINTR)
    st = DumpStatus(family=c.AF_INET)
    failure: list[BaseException] = []
    DiagSocket._check(diag_msg(seq=7) + done_with_error, 7, 0, st, failure)
    assert st.done and isinstance(failure[0], NetlinkError) and failure[0].errno == errno.EINTR


def test_check_turns_nlmsg_error_into_a_failure() -> None:
    """An NLMSG_ERROR for our request becomes a NetlinkError naming the errno."""
    st = DumpStatus(family=c.AF_INET6)
    failure: list[BaseException] = []
    DiagSocket._check(error_msg(errno.EPERM, seq=3), 3, 0, st, failure)
    assert isinstance(failure[0], NetlinkError) and failure[0].errno == errno.EPERM
    assert "EPERM" in str(failure[0])


def test_check_survives_a_16_byte_nlmsg_error_claiming_more() -> None:
    """A lone NLMSG_ERROR header whose length field claims an error code it does not carry is no crash."""
    import struct

    st = DumpStatus(family=c.AF_INET)
    failure: list[BaseException] = []
    data = struct.pack("<IHHII", 36, c.NLMSG_ERROR, 0, 3, 0)  # 16 bytes, nlmsg_len says 36
    assert DiagSocket._check(data, 3, 0, st, failure)
    assert not failure


async def test_busy_event_loop_does_not_time_out_a_dump_whose_replies_are_waiting() -> None:
    """With another task holding the loop 20 ms per turn, a dump of 1,500 listeners still completes
    within a 50 ms budget: replies queued on the socket mean the kernel is not the slow one."""
    import asyncio
    import time

    listeners = []
    try:
        for _ in range(1500):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            listeners.append(s)
        ports = {s.getsockname()[1] for s in listeners}
        stop = asyncio.Event()

        async def hog() -> None:
            while not stop.is_set():
                time.sleep(0.02)  # noqa: ASYNC251 - holding the loop is the point: an encoder's turn
                await asyncio.sleep(0)

        hogger = asyncio.create_task(hog())
        diag = DiagSocket(max_recvs_per_callback=1)
        try:
            chunks = [ch.data async for ch in diag.dump(c.AF_INET, states=1 << c.TCP_STATES["listen"],
                                                         ext=0, timeout_s=0.05)]
        finally:
            stop.set()
            await hogger
            diag.close()
        batch = decode_messages(chunks).batch
        seen = set(batch.columns["inet_diag_msg_socket_source_port"].tolist())
        assert ports <= seen
    finally:
        for s in listeners:
            s.close()
