"""CollectiveError: a collective could not complete (dead or missing rank, timeout,
mismatched calls, aborted job). Raised by every communicator kind; the C++ transport
raises the same class through the extension's exception translator."""

from __future__ import annotations

try:
    from .._aicc_cpu import CollectiveError
except ImportError:  # a source tree without the extension: the pure-Python communicators still raise it
    class CollectiveError(RuntimeError):
        """A collective failed: a rank died, timed out or called a different collective."""

__all__ = ["CollectiveError"]
