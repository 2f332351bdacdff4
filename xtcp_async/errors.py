"""The one exception tree of the project.

Third-party errors are translated at the boundary (``raise SinkError(...) from exc``);
only the CLI maps these to exit codes.
"""

from __future__ import annotations


class XtcpError(Exception):
    """Base of every error this package raises on purpose."""

    #: Whether trying the same operation again later can succeed.
    retriable: bool = False


class ConfigError(XtcpError):
    """A configuration value is invalid; the message names the field (exit code 2)."""


class NetlinkError(XtcpError):
    """The kernel answered a dump with an error, or the socket failed."""

    def __init__(self, message: str, errno: int = 0) -> None:
        super().__init__(message)
        self.errno = errno


class PollTimeoutError(NetlinkError):
    """A dump did not finish within the poll timeout."""

    retriable = True


class SinkError(XtcpError):
    """A sink could not deliver a payload."""

    def __init__(self, message: str, *, retriable: bool = True) -> None:
        super().__init__(message)
        self.retriable = retriable


class DeliveryError(XtcpError):
    """Nothing could be delivered before a deadline (``--once`` maps this to exit code 1)."""
