"""Network namespaces: which ones to poll, how to find and enter them, and whose they are.

The poll side of issue 10. ``select`` parses ``--netns``; ``discover`` lists the host's
namespaces (``/run/netns`` names and every process's ``/proc/PID/ns/net``); ``enter`` opens a
NETLINK_SOCK_DIAG socket inside one; ``attribution`` reads container and pod identity from a
cgroup path (pure); ``registry`` keeps one socket per live namespace between polls and
``poller`` dumps several namespaces at once.
"""
