"""Numbers from the Linux uapi headers (netlink.h, sock_diag.h, inet_diag.h, tcp_states.h)."""

from __future__ import annotations

import socket

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20

NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_OVERRUN = 4

NLM_F_REQUEST = 0x01
NLM_F_MULTI = 0x02
NLM_F_DUMP_INTR = 0x10
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH

NLMSG_HDRLEN = 16
INET_DIAG_MSG_LEN = 72
NLA_HDRLEN = 4
#: Attribute type bits that are flags, not part of the type (NLA_F_NESTED | NLA_F_NET_BYTEORDER).
NLA_TYPE_MASK = 0x3FFF

SOL_NETLINK = 270
NETLINK_EXT_ACK = 11
NETLINK_GET_STRICT_CHK = 12

AF_INET = int(socket.AF_INET)
AF_INET6 = int(socket.AF_INET6)
FAMILY_NAMES = {AF_INET: "inet", AF_INET6: "inet6"}

# INET_DIAG_* response attribute types.
INET_DIAG_MEMINFO = 1
INET_DIAG_INFO = 2
INET_DIAG_VEGASINFO = 3
INET_DIAG_CONG = 4
INET_DIAG_TOS = 5
INET_DIAG_TCLASS = 6
INET_DIAG_SKMEMINFO = 7
INET_DIAG_SHUTDOWN = 8
INET_DIAG_DCTCPINFO = 9
INET_DIAG_PROTOCOL = 10
INET_DIAG_SKV6ONLY = 11
INET_DIAG_LOCALS = 12
INET_DIAG_PEERS = 13
INET_DIAG_PAD = 14
INET_DIAG_MARK = 15
INET_DIAG_BBRINFO = 16
INET_DIAG_CLASS_ID = 17
INET_DIAG_MD5SIG = 18
INET_DIAG_ULP_INFO = 19
INET_DIAG_SK_BPF_STORAGES = 20
INET_DIAG_CGROUP_ID = 21
INET_DIAG_SOCKOPT = 22
INET_DIAG_MAX_KNOWN = 22

#: idiag_ext asks for attribute n with bit 1 << (n - 1); it is a u8, so only types 1..8 fit.
#: The VEGASINFO bit makes vegas, DCTCP and BBR all report their cc info; TCLASS also brings CLASS_ID.
EXT_ALL = 0
for _attr in (INET_DIAG_MEMINFO, INET_DIAG_INFO, INET_DIAG_VEGASINFO, INET_DIAG_CONG,
              INET_DIAG_TOS, INET_DIAG_TCLASS, INET_DIAG_SKMEMINFO):
    EXT_ALL |= 1 << (_attr - 1)
del _attr

# TCP states (include/net/tcp_states.h).
TCP_STATES = {
    "established": 1, "syn-sent": 2, "syn-recv": 3, "fin-wait-1": 4, "fin-wait-2": 5,
    "time-wait": 6, "close": 7, "close-wait": 8, "last-ack": 9, "listen": 10, "closing": 11,
    "new-syn-recv": 12, "bound-inactive": 13,
}
TCP_STATE_NAMES = {v: k for k, v in TCP_STATES.items()}
#: Every socket state ss lists with -a. Bound-but-inactive sockets (bit 13, kernel 6.5+) are
#: left out as ss leaves them out; `--states all,bound-inactive` asks for them (they come
#: back in state CLOSE with no tcp_info).
TCP_BOUND_INACTIVE = 13
ALL_STATES_MASK = 0xFFFFFFFF & ~(1 << TCP_BOUND_INACTIVE)
