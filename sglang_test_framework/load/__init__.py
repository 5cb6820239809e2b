"""Load generation: the seeded :class:`RequestGenerator` (datasets, lengths, arrivals) and the
open-loop :func:`dispatch`."""

from __future__ import annotations

from .dispatch import DispatchStats, dispatch
from .request_generator import RequestGenerator

__all__ = ["DispatchStats", "RequestGenerator", "dispatch"]
