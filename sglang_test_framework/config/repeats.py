"""RepeatOptions: run a node or routing test several times for confidence intervals."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import StrictModel

__all__ = ["MAX_REPEATS", "RepeatOptions", "RepeatSeed"]

MAX_REPEATS = 100
RepeatSeed = Literal["same", "increment"]


class RepeatOptions(StrictModel):
    """How often a run is repeated (NodeConfig and RoutingConfig extend it).

    With ``repeats`` = N > 1 the scenario runs N complete, independent runs (each launches its own
    servers, warms up and flushes caches) into ``<output_dir>/rep-0`` … ``rep-<N−1>`` and writes one
    combined summary (mean and 95% confidence interval per key metric) into ``output_dir``.
    ``repeat_seed='same'`` (the default) sends every repeat the identical workload, so the interval
    measures the run-to-run variation of the server; ``'increment'`` gives repeat k the seed
    ``seed + k``, so it also covers the sampling of the workload.
    """

    repeats: int = Field(default=1, ge=1, le=MAX_REPEATS, description="independent runs, for confidence intervals")
    repeat_seed: RepeatSeed = Field(
        default="same", description="same: every repeat sends the same workload; increment: repeat k uses seed + k"
    )

    def repeat_seed_of(self, seed: int, repeat: int) -> int:
        """The workload seed of repeat ``repeat`` (0-based) of a run seeded ``seed``."""
        return seed + repeat if self.repeat_seed == "increment" else seed
