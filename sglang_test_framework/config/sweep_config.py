"""SweepConfig: a grid over server args and request rates on top of a base NodeConfig."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from .base import StrictModel
from .node_config import NodeConfig

__all__ = ["SweepConfig", "SweepPoint"]


class SweepPoint(StrictModel):
    """One grid point (one repeat of it): its stable name, the overrides it applies to the base config,
    and the repeat's index (0 … repeats − 1)."""

    name: str
    overrides: dict[str, Any]
    repeat: int = 0


class SweepConfig(StrictModel):
    """Run the base NodeConfig once per grid point (and per repeat).

    ``grid`` keys are NodeConfig fields (``max_running_requests``, ``request_rate``, ``chunked_prefill_size``…)
    or raw server flags starting with ``--`` (``--hicache-mem-layout``, ``--page-size``…), which are
    appended to ``extra_args`` (or to ``sim_args`` for ``--sim-*`` flags). Finished points are kept in
    ``output_dir/points/`` and skipped when the sweep is run again. ``repeats`` runs each point that
    many times (the sweep table shows their mean and 95% CI); ``base.repeat_seed`` decides whether the
    repeats send the same workload (``same``) or repeat k uses seed + k (``increment``).
    """

    base: NodeConfig
    grid: dict[str, list[Any]] = Field(min_length=1)
    repeats: int = Field(default=1, ge=1, le=100)
    output_dir: Path = Path("results/sweep")

    @field_validator("grid")
    @classmethod
    def _grid_keys(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in grid.items():
            if not values:
                raise ValueError(f"grid.{key}: give at least one value")
            if not key.startswith("--") and key not in NodeConfig.model_fields:
                raise ValueError(
                    f"grid.{key}: not a NodeConfig field; use a field name such as "
                    f"max_running_requests, or a raw server flag starting with '--'"
                )
            if key in ("output_dir", "name"):
                raise ValueError(f"grid.{key}: set by the sweep itself")
        return grid

    @model_validator(mode="after")
    def _base_repeats(self) -> SweepConfig:
        if self.base.repeats != 1:
            raise ValueError(
                f"base.repeats: {self.base.repeats}; a sweep repeats its points itself: set the sweep's repeats "
                "(sweep --repeats) instead"
            )
        return self

    def points(self) -> list[SweepPoint]:
        """Every grid point × repeat, in a stable order."""
        keys = list(self.grid)
        out = []
        for combo in itertools.product(*(self.grid[k] for k in keys)):
            label = ",".join(f"{k.lstrip('-')}={v}" for k, v in zip(keys, combo, strict=True))
            for rep in range(self.repeats):
                name = label if self.repeats == 1 else f"{label},rep={rep}"
                out.append(SweepPoint(name=name, overrides=dict(zip(keys, combo, strict=True)), repeat=rep))
        return out

    def point_config(self, point: SweepPoint) -> NodeConfig:
        """The NodeConfig of one point (its own output directory, raw flags appended).

        Built from the base's explicit values, not a dump, so the API key survives and counts a
        dataset derives (``num_prompts``) are derived again for the point."""
        values = self.base.explicit_values()
        extra = list(self.base.extra_args)
        sim = list(self.base.sim_args)
        for key, value in point.overrides.items():
            if key.startswith("--sim-"):
                sim += [key] if value is True else [key, str(value)]
            elif key.startswith("--"):
                extra += [key] if value is True else [key, str(value)]
            else:
                values[key] = value
        values.update(
            extra_args=extra, sim_args=sim, name=point.name, output_dir=self.output_dir / "runs" / safe_name(point.name)
        )
        if self.base.repeat_seed == "increment" and "seed" not in point.overrides:
            values["seed"] = self.base.repeat_seed_of(self.base.seed, point.repeat)
        return NodeConfig(**values)


def safe_name(name: str) -> str:
    """A file-name-safe form of a point name."""
    return re.sub(r"[^A-Za-z0-9_.=,-]+", "_", name)
