"""WorkloadConfig: what to send and when (datasets, lengths, arrivals, API, concurrency)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .base import StrictModel
from .load_shape import MeasureWindowSpec, check_load_shape, parse_measure_window

__all__ = [
    "MAX_LEN_TOKENS",
    "MAX_NUM_PROMPTS",
    "MAX_REQUEST_RATE",
    "MIN_REQUEST_RATE",
    "ApiType",
    "DatasetName",
    "MeasureWindowSpec",
    "WorkloadConfig",
]

DatasetName = Literal["sharegpt", "random", "custom", "generated-shared-prefix", "multi-turn"]
ApiType = Literal["sglang", "openai", "openai-chat"]

MAX_NUM_PROMPTS = 10_000_000
"""Most requests one workload may hold (the request list is built in memory)."""
MAX_LEN_TOKENS = 4_000_000
"""Longest prompt or output a workload may ask for, in tokens."""
MIN_REQUEST_RATE = 1e-6
"""Slowest finite request rate (req/s): one request every ~11.6 days."""
MAX_REQUEST_RATE = 1e9
"""Fastest finite request rate (req/s); ``inf`` sends everything at once."""


class WorkloadConfig(StrictModel):
    """A seeded open-loop workload. Scenario configs (NodeConfig, RoutingConfig) extend it.

    ``request_rate`` is requests/s of a Poisson process (gamma with ``burstiness`` ≠ 1); ``inf`` sends
    everything at t=0. ``random_range_ratio`` follows SGLang: lengths are uniform in
    [max(int(L·ratio), 1), L]. ``api_type`` openai = /v1/completions, openai-chat = /v1/chat/completions.

    ``num_prompts`` is the number of requests sent. Two datasets define their own count and set it:
    ``generated-shared-prefix`` with uniform groups (``gsp_num_groups × gsp_prompts_per_group``) and
    ``multi-turn`` (``multi_turn_num_conversations × multi_turn_turns``); an explicit ``num_prompts``
    that disagrees is rejected (docs/workloads.md).

    ``duration_s`` sizes the load by time instead: ``num_prompts`` is then set to the expected number of
    arrivals in ``[0, duration_s)`` (``request_rate × duration_s``, the ramp-up counted at its mean
    rate), and an explicit ``num_prompts`` that disagrees is rejected. ``ramp_up_s`` raises the rate
    linearly from ``ramp_up_start_rate`` to ``request_rate`` first; ``measure_window`` picks the part
    of the run the summary covers (``all``, ``auto`` = after the ramp-up and before the drain, or
    ``[start_s, end_s]``; docs/metrics.md).
    """

    dataset_name: DatasetName = "random"
    dataset_path: Path | None = None
    num_prompts: int = Field(default=200, gt=0, le=MAX_NUM_PROMPTS, description="requests sent")
    request_rate: float = Field(default=math.inf, allow_inf_nan=True, description="req/s; inf sends all at once")
    burstiness: float = Field(default=1.0, ge=1e-3, le=1e3, description="gamma shape; 1 = Poisson")
    seed: int = Field(default=42, ge=0, le=2**63 - 1)
    random_input_len: int = Field(default=1024, gt=0, le=MAX_LEN_TOKENS)
    random_output_len: int = Field(default=128, gt=0, le=MAX_LEN_TOKENS)
    random_range_ratio: float = Field(default=0.0, ge=0, le=1)
    sharegpt_output_len: int | None = Field(default=None, gt=0, le=MAX_LEN_TOKENS)
    sharegpt_context_len: int | None = Field(default=None, gt=0, le=MAX_LEN_TOKENS)
    tokenizer_path: str | None = None
    gsp_num_groups: int = Field(default=8, gt=0, le=1_000_000)
    gsp_prompts_per_group: int = Field(default=16, gt=0, le=MAX_NUM_PROMPTS)
    gsp_system_prompt_len: int = Field(default=1024, gt=0, le=MAX_LEN_TOKENS)
    gsp_question_len: int = Field(default=64, gt=0, le=MAX_LEN_TOKENS)
    gsp_output_len: int = Field(default=64, gt=0, le=MAX_LEN_TOKENS)
    gsp_group_distribution: Literal["uniform", "zipf"] = "uniform"
    gsp_zipf_alpha: float = Field(default=1.1, gt=0, le=100)
    multi_turn_num_conversations: int = Field(default=16, gt=0, le=MAX_NUM_PROMPTS)
    multi_turn_turns: int = Field(default=4, gt=0, le=10_000)
    multi_turn_user_len: int = Field(default=64, gt=0, le=MAX_LEN_TOKENS)
    multi_turn_assistant_len: int = Field(default=64, gt=0, le=MAX_LEN_TOKENS)
    multi_turn_think_time_s: float = Field(default=1.0, ge=0, le=86_400)
    duration_s: float | None = Field(
        default=None,
        gt=0,
        le=30 * 86_400,
        description="send for this long: sets num_prompts to request_rate × duration_s (ramp-up at its mean rate)",
    )
    ramp_up_s: float = Field(
        default=0.0, ge=0, le=86_400, description="raise the rate linearly from ramp_up_start_rate over this long"
    )
    ramp_up_start_rate: float = Field(default=0.0, ge=0, le=MAX_REQUEST_RATE, description="req/s at t=0 of a ramp-up")
    measure_window: MeasureWindowSpec = Field(
        default="all", description="what the summary covers: all, auto (after ramp-up, before drain) or START,END s"
    )
    max_concurrency: int | None = Field(default=None, gt=0, le=1_000_000)
    warmup_requests: int = Field(default=2, ge=0, le=100_000)
    api_type: ApiType = "sglang"
    stream: bool = True
    ignore_eos: bool = True
    extra_request_body: dict[str, Any] = Field(default_factory=dict)
    request_timeout_s: float = Field(default=600.0, gt=0, le=7 * 86_400)
    stream_idle_timeout_s: float = Field(
        default=120.0,
        gt=0,
        le=7 * 86_400,
        description="fail a request when nothing arrives for this long (also covers queueing before the first token)",
    )

    @field_validator("request_rate")
    @classmethod
    def _rate(cls, v: float) -> float:
        if v == math.inf:
            return v
        if math.isnan(v) or not MIN_REQUEST_RATE <= v <= MAX_REQUEST_RATE:
            raise ValueError(
                f"must be between {MIN_REQUEST_RATE:g} and {MAX_REQUEST_RATE:g} requests/s, or inf to send "
                "everything at once"
            )
        return v

    @field_validator("measure_window", mode="before")
    @classmethod
    def _window(cls, v: Any) -> Any:
        return parse_measure_window(v)

    @model_validator(mode="after")
    def _dataset(self) -> WorkloadConfig:
        if self.dataset_name == "custom" and self.dataset_path is None:
            raise ValueError(
                "dataset_path: required when dataset_name='custom'; pass a JSONL file "
                'with one {"prompt": ..., "output_len": ...} object per line'
            )
        if self.dataset_path is not None and not Path(self.dataset_path).is_file():
            raise ValueError(
                f"dataset_path: {self.dataset_path} does not exist; pass an existing file "
                "(or omit it to use the built-in ShareGPT-format sample)"
            )
        self._check_prompt_lengths()
        self._set_dataset_count()
        count = check_load_shape(self, explicit_num_prompts="num_prompts" in self.model_fields_set)
        if count is not None:
            self.__dict__["num_prompts"] = count
        return self

    def _check_prompt_lengths(self) -> None:
        if self.dataset_name == "generated-shared-prefix":
            total = self.gsp_system_prompt_len + self.gsp_question_len
            if total > MAX_LEN_TOKENS:
                raise ValueError(
                    f"gsp_system_prompt_len + gsp_question_len = {total} tokens; keep prompts ≤ {MAX_LEN_TOKENS}"
                )
        if self.dataset_name == "multi-turn":
            last = self.multi_turn_turns * self.multi_turn_user_len
            last += (self.multi_turn_turns - 1) * self.multi_turn_assistant_len
            if last > MAX_LEN_TOKENS:
                raise ValueError(
                    f"multi-turn: the last turn's prompt would be {last} tokens; keep it ≤ {MAX_LEN_TOKENS} "
                    "(fewer multi_turn_turns or shorter turns)"
                )

    def dataset_request_count(self) -> int | None:
        """The number of requests the dataset itself defines, or None when ``num_prompts`` decides."""
        if self.dataset_name == "generated-shared-prefix" and self.gsp_group_distribution == "uniform":
            return self.gsp_num_groups * self.gsp_prompts_per_group
        if self.dataset_name == "multi-turn":
            return self.multi_turn_num_conversations * self.multi_turn_turns
        return None

    def _set_dataset_count(self) -> None:
        """Make ``num_prompts`` the count the dataset sends (so reports show what was sent)."""
        count = self.dataset_request_count()
        if count is None:
            return
        if self.dataset_name == "multi-turn":
            how = "multi_turn_num_conversations × multi_turn_turns"
            fix = "change those fields instead"
        else:
            how = "gsp_num_groups × gsp_prompts_per_group"
            fix = "change those fields, or use gsp_group_distribution='zipf' to draw num_prompts requests"
        if count > MAX_NUM_PROMPTS:
            raise ValueError(f"{how} = {count} requests; keep it ≤ {MAX_NUM_PROMPTS}")
        if "num_prompts" in self.model_fields_set and self.num_prompts != count:
            raise ValueError(
                f"num_prompts: {self.dataset_name} sends {how} = {count} requests, not {self.num_prompts}; "
                f"omit num_prompts or {fix}"
            )
        self.__dict__["num_prompts"] = count
