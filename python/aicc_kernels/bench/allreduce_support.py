"""Allreduce measurement over an in-process thread communicator (self-check and the
`allreduce` subcommand's fallback when the collectives' own benchmark module is absent).

algbw = bytes / time, busbw = algbw * 2(n-1)/n, as nccl-tests counts an allreduce.
"""

from __future__ import annotations

from typing import Optional


def thread_allreduce_unavailable(ak) -> Optional[str]:
    """None when this build has ak.allreduce and a thread communicator; the reason otherwise."""
    if not hasattr(ak, "allreduce"):
        return "ak.allreduce is not in this build (the collectives have not landed)"
    coll = getattr(ak, "collective", None)
    if coll is None or not hasattr(coll, "init"):
        return "ak.collective.init is not in this build"
    return None
