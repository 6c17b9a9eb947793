"""Errors raised by the Ray placement layer; each names the role so a failed run says which pool broke."""

from __future__ import annotations

from typing import Iterable


class ClusterError(RuntimeError):
    """Base class of every error raised by ``viva.cluster``."""


class CallTimeout(ClusterError):
    """A remote call did not finish within its timeout (the work may still be running on the actor)."""

    def __init__(self, role: str, method: str, timeout: float, pending: Iterable[int] = ()) -> None:
        self.role, self.method, self.timeout = role, method, timeout
        self.pending = tuple(pending)
        where = f" (actors {list(self.pending)} still busy)" if self.pending else ""
        super().__init__(f"{role}.{method} did not finish within {timeout:g} s{where}")


class ActorFailed(ClusterError):
    """An actor is dead for good: its restart budget (max_restarts) is spent, so the run cannot go on."""

    def __init__(self, role: str, index: int, cause: BaseException | str) -> None:
        self.role, self.index, self.cause = role, index, cause
        lines = [ln.strip() for ln in str(cause).strip().splitlines() if ln.strip()] or [type(cause).__name__]
        # First line says how it died; the last one carries the worker's own exception, if any.
        summary = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
        super().__init__(f"{role} actor {index} failed permanently (restart budget spent): {summary}")


class ResourceShortfall(ClusterError):
    """A role asks for more CPUs / GPUs / custom resources than the cluster has (or can free in time)."""

    def __init__(self, role: str, detail: str) -> None:
        self.role, self.detail = role, detail
        super().__init__(f"cannot place role '{role}': {detail}")
