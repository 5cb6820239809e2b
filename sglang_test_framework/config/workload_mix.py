"""Mixed workloads: several workloads interleaved with weights on one arrival process
(docs/workloads.md, "Mixed workloads").

In YAML, ``workload_mix`` is a list of components, each ``{name, weight, <workload fields>}``::

    workload_mix:
      - {name: chat, weight: 70, dataset_name: random, random_input_len: 256, random_output_len: 128}
      - {name: long-context, weight: 20, dataset_name: random, random_input_len: 8000}
      - {name: shared-prefix, weight: 10, dataset_name: generated-shared-prefix, gsp_group_distribution: zipf}

A component may set only the fields that choose prompts and lengths (:data:`MIX_FIELD_PREFIXES`); the
load itself (count or duration, rate, stages, concurrency, API) is the enclosing config's.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from pydantic import Field, ValidationError, field_validator, model_validator

from .base import StrictModel, format_validation_error

if TYPE_CHECKING:
    from .workload import WorkloadConfig

__all__ = ["MIX_FIELD_PREFIXES", "WorkloadMixEntry", "check_workload_mix", "component_config", "mix_counts"]

MIX_FIELD_PREFIXES: tuple[str, ...] = ("dataset_", "random_", "sharegpt_", "gsp_")
"""A component may set the workload fields whose names start with one of these (dataset and lengths)."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class WorkloadMixEntry(StrictModel):
    """One component of a mix: its ``name`` (reports group by it), its ``weight`` (share of the requests,
    relative to the other weights) and the workload fields it changes (``fields``; in YAML written
    next to ``name`` and ``weight``)."""

    name: str = Field(description="label of the component in reports (letters, digits, . _ -)")
    weight: float = Field(gt=0, le=1e9, description="relative share of the requests")
    fields: dict[str, Any] = Field(default_factory=dict, description="workload fields of this component")

    @model_validator(mode="before")
    @classmethod
    def _flat_form(cls, data: Any) -> Any:
        """Accept ``{name, weight, dataset_name: …}``: every other key is a workload field."""
        if not isinstance(data, dict):
            return data
        own = {k: v for k, v in data.items() if k in ("name", "weight", "fields")}
        rest = {k: v for k, v in data.items() if k not in own}
        nested = own.get("fields") or {}
        if not isinstance(nested, dict):
            return data  # pydantic names the field
        return {**own, "fields": {**nested, **rest}}

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"{v!r}: use 1-64 letters, digits, '.', '_' or '-' (e.g. short-chat)")
        return v

    @field_validator("fields")
    @classmethod
    def _fields(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key in v:
            if not key.startswith(MIX_FIELD_PREFIXES):
                raise ValueError(
                    f"{key}: a mix component sets only dataset and length fields "
                    f"({', '.join(p + '*' for p in MIX_FIELD_PREFIXES)}); set the load ({key}) once for the whole mix"
                )
        return v


def component_config(base: WorkloadConfig, entry: WorkloadMixEntry, num_prompts: int | None = None) -> WorkloadConfig:
    """The plain :class:`WorkloadConfig` one component draws its prompts from: ``base``'s dataset and
    length fields, the component's fields on top, ``num_prompts`` requests (default: the dataset's own).

    Raises:
        ValueError: The component's fields are invalid (the message names the component and field).
    """
    from .workload import WorkloadConfig

    values = {
        name: getattr(base, name)
        for name in WorkloadConfig.model_fields
        if name.startswith(MIX_FIELD_PREFIXES) or name in ("seed", "tokenizer_path")
    }
    values.update(entry.fields)
    if num_prompts is not None:
        values["num_prompts"] = num_prompts
    try:
        return WorkloadConfig(**values)
    except ValidationError as exc:
        text = format_validation_error(exc, f"workload_mix component {entry.name!r}", WorkloadConfig)
        raise ValueError(text) from None


def check_workload_mix(config: WorkloadConfig) -> None:
    """Validate ``config.workload_mix`` (called by WorkloadConfig's validator).

    Raises:
        ValueError: Duplicate names, or a component that is invalid or defines its own request count.
    """
    names = [entry.name for entry in config.workload_mix]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise ValueError(f"workload_mix: the name {duplicate!r} is used twice; give each component its own name")
    for entry in config.workload_mix:
        component = component_config(config, entry)
        sessions = getattr(component, "sharegpt_sessions", False) or getattr(component, "gsp_num_turns", 1) > 1
        if sessions or component.dataset_name == "trace":
            raise ValueError(
                f"workload_mix component {entry.name!r}: sessions and traces set their own timing, which a mix "
                "cannot interleave; leave sharegpt_sessions off, gsp_num_turns at 1 and use another dataset_name"
            )
        if component.dataset_request_count() is not None:
            raise ValueError(
                f"workload_mix component {entry.name!r}: {component.dataset_name} sets its own request count and "
                "timing, which a mix cannot interleave; use dataset_name random, sharegpt or custom, or "
                "generated-shared-prefix with gsp_group_distribution: zipf"
            )


def mix_counts(weights: list[float], total: int) -> list[int]:
    """Requests per component: ``total`` split by ``weights`` with the largest-remainder method, so the
    counts sum to ``total`` exactly and each is within 1 of ``total × weight / Σweights``."""
    share = [w / math.fsum(weights) * total for w in weights]
    counts = [math.floor(s) for s in share]
    order = sorted(range(len(weights)), key=lambda i: (counts[i] - share[i], i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts
