"""Load generation: the seeded :class:`RequestGenerator` (datasets, lengths, arrivals, sessions, virtual
users) and :func:`dispatch` (open-loop deadlines and closed-loop chains)."""

from __future__ import annotations

from .dispatch import DispatchStats, dispatch
from .request_generator import RequestGenerator

__all__ = ["DispatchStats", "RequestGenerator", "dispatch"]
