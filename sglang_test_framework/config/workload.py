"""WorkloadConfig: what to send and when (datasets, lengths, arrivals, API, concurrency)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .base import StrictModel
from .client_nodes import check_client_nodes
from .closed_loop import RoutingKeyBy, ThinkTimeDistribution, check_closed_loop
from .load_shape import MeasureWindowSpec, check_load_shape, parse_measure_window
from .stages import LoadStage, parse_stages
from .trace_fields import TraceSessions, check_trace_fields
from .workload_mix import WorkloadMixEntry, check_workload_mix

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

DatasetName = Literal["sharegpt", "random", "custom", "generated-shared-prefix", "multi-turn", "trace"]
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
    multi_turn_think_time_s: float = Field(
        default=1.0, ge=0, le=86_400, description="mean think time between the turns of every session (s)"
    )
    think_time_distribution: ThinkTimeDistribution = Field(
        default="fixed", description="session think times: fixed, exponential or uniform in [0, 2×mean]; seeded"
    )
    sharegpt_sessions: bool = Field(
        default=False, description="replay each ShareGPT conversation turn by turn as a closed-loop session"
    )
    gsp_num_turns: int = Field(
        default=1, ge=1, le=10_000, description="turns per shared-prefix conversation (closed loop), as SGLang's"
    )
    gsp_turn_think_time_s: float = Field(
        default=0.0, ge=0, le=86_400, description="mean think time between shared-prefix turns (s); 0 as SGLang"
    )
    routing_key_by: RoutingKeyBy = Field(
        default="none", description="send X-SMG-Routing-Key per session / virtual user, per group, or none"
    )
    virtual_users: int | None = Field(
        default=None, gt=0, le=1_000_000, description="closed loop: N users, each sends when its last request finished"
    )
    virtual_user_think_time_s: float = Field(
        default=0.0, ge=0, le=86_400, description="pause of a virtual user between its requests (s)"
    )
    trace_format: Literal["auto", "mooncake", "azure", "generic"] = Field(
        default="auto", description="format of the dataset_name=trace file; auto detects it"
    )
    trace_speedup: float = Field(
        default=1.0, gt=0, le=1e6, description="replay this many times faster than recorded (2 = twice the rate)"
    )
    trace_start_s: float = Field(default=0.0, ge=0, le=1e9, description="skip rows before this trace time (s)")
    trace_max_duration_s: float | None = Field(
        default=None, gt=0, le=1e9, description="replay rows within this long after trace_start_s (trace time)"
    )
    trace_rows: list[int] | None = Field(default=None, description="START END: rows [START, END) of the sorted trace")
    trace_max_idle_gap_s: float | None = Field(
        default=None, ge=0, le=1e9, description="shorten longer gaps between rows to this (trace time, s)"
    )
    trace_block_size: int = Field(default=512, gt=0, le=1_000_000, description="tokens per hash_ids block")
    trace_sessions: TraceSessions = Field(
        default="open", description="closed: a trace's session_id turns wait for the previous answer"
    )
    trace_think_time_s: float | None = Field(
        default=None, ge=0, le=86_400, description="closed trace sessions: fixed think time (default: the trace's gap)"
    )
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
    stages: list[LoadStage] = Field(
        default_factory=list,
        description="rate (or virtual-user) schedule, e.g. 'ramp:0-50:30s,constant:50:60s,burst:10/100:5s/5s:60s'",
    )
    max_concurrency: int | None = Field(default=None, gt=0, le=1_000_000)
    client_processes: int | None = Field(
        default=None,
        gt=0,
        le=256,
        description="client worker processes sharing one schedule; omit: 1 per 400 req/s offered, ≤ CPU count",
    )
    client_nodes: int | None = Field(
        default=None,
        gt=0,
        le=1024,
        description="run the client processes as Ray actors spread over this many Ray nodes (docs/scaling.md)",
    )
    client_ray_address: str | None = Field(
        default=None, description="client_nodes: the Ray cluster (default: the servers' Ray, $RAY_ADDRESS or local)"
    )
    warmup_requests: int = Field(default=2, ge=0, le=100_000)
    api_type: ApiType = "sglang"
    stream: bool = True
    ignore_eos: bool = True
    extra_request_body: dict[str, Any] = Field(default_factory=dict)
    request_timeout_s: float = Field(default=600.0, gt=0, le=7 * 86_400)
    workload_mix: list[WorkloadMixEntry] = Field(
        default_factory=list,
        description="interleave these workloads by weight (YAML list of {name, weight, dataset/length fields})",
    )
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

    @field_validator("stages", mode="before")
    @classmethod
    def _stages(cls, v: Any) -> Any:
        return parse_stages(v)

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
        trace_count = check_trace_fields(self)
        if trace_count is not None:
            self.__dict__["num_prompts"] = trace_count
        self._check_client_processes()
        check_client_nodes(self)
        if self.workload_mix:
            check_workload_mix(self)
        self._set_dataset_count()
        check_closed_loop(self, self.model_fields_set)
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

    def _check_client_processes(self) -> None:
        processes, limit = self.client_processes, self.max_concurrency
        if processes is not None and limit is not None and limit < processes:
            raise ValueError(
                f"client_processes: {processes} processes cannot share max_concurrency={limit} "
                f"(each needs ≥ 1 slot); use client_processes ≤ {limit} or omit it"
            )

    def dataset_request_count(self) -> int | None:
        """The number of requests the dataset itself defines, or None when ``num_prompts`` decides."""
        if self.dataset_name == "generated-shared-prefix" and self.gsp_group_distribution == "uniform":
            return self.gsp_num_groups * self.gsp_prompts_per_group * self.gsp_num_turns
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
            how = "gsp_num_groups × gsp_prompts_per_group" + (" × gsp_num_turns" if self.gsp_num_turns > 1 else "")
            fix = "change those fields, or use gsp_group_distribution='zipf' to draw num_prompts requests"
        if count > MAX_NUM_PROMPTS:
            raise ValueError(f"{how} = {count} requests; keep it ≤ {MAX_NUM_PROMPTS}")
        if "num_prompts" in self.model_fields_set and self.num_prompts != count:
            raise ValueError(
                f"num_prompts: {self.dataset_name} sends {how} = {count} requests, not {self.num_prompts}; "
                f"omit num_prompts or {fix}"
            )
        self.__dict__["num_prompts"] = count
