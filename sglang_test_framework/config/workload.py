"""WorkloadConfig: what to send and when (datasets, lengths, arrivals, API, concurrency)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .base import StrictModel

__all__ = ["ApiType", "DatasetName", "WorkloadConfig"]

DatasetName = Literal["sharegpt", "random", "custom", "generated-shared-prefix", "multi-turn"]
ApiType = Literal["sglang", "openai", "openai-chat"]


class WorkloadConfig(StrictModel):
    """A seeded open-loop workload. Scenario configs (NodeConfig, RoutingConfig) extend it.

    ``request_rate`` is requests/s of a Poisson process (gamma with ``burstiness`` ≠ 1); ``inf`` sends
    everything at t=0. ``random_range_ratio`` follows SGLang: lengths are uniform in
    [max(int(L·ratio), 1), L]. ``api_type`` openai = /v1/completions, openai-chat = /v1/chat/completions.
    """

    dataset_name: DatasetName = "random"
    dataset_path: Path | None = None
    num_prompts: int = Field(default=200, gt=0)
    request_rate: float = Field(default=math.inf, gt=0)
    burstiness: float = Field(default=1.0, gt=0)
    seed: int = 42
    random_input_len: int = Field(default=1024, gt=0)
    random_output_len: int = Field(default=128, gt=0)
    random_range_ratio: float = Field(default=0.0, ge=0, le=1)
    sharegpt_output_len: int | None = Field(default=None, gt=0)
    sharegpt_context_len: int | None = Field(default=None, gt=0)
    tokenizer_path: str | None = None
    gsp_num_groups: int = Field(default=8, gt=0)
    gsp_prompts_per_group: int = Field(default=16, gt=0)
    gsp_system_prompt_len: int = Field(default=1024, gt=0)
    gsp_question_len: int = Field(default=64, gt=0)
    gsp_output_len: int = Field(default=64, gt=0)
    gsp_group_distribution: Literal["uniform", "zipf"] = "uniform"
    gsp_zipf_alpha: float = Field(default=1.1, gt=0)
    multi_turn_num_conversations: int = Field(default=16, gt=0)
    multi_turn_turns: int = Field(default=4, gt=0)
    multi_turn_user_len: int = Field(default=64, gt=0)
    multi_turn_assistant_len: int = Field(default=64, gt=0)
    multi_turn_think_time_s: float = Field(default=1.0, ge=0)
    max_concurrency: int | None = Field(default=None, gt=0)
    warmup_requests: int = Field(default=2, ge=0)
    api_type: ApiType = "sglang"
    stream: bool = True
    ignore_eos: bool = True
    extra_request_body: dict[str, Any] = Field(default_factory=dict)
    request_timeout_s: float = Field(default=600.0, gt=0)

    @field_validator("request_rate")
    @classmethod
    def _rate(cls, v: float) -> float:
        if math.isnan(v):
            raise ValueError("must be a number of requests per second > 0, or inf")
        return v

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
        return self
