"""NodeConfig: one server under a seeded open-loop workload (the NodeTest scenario)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from ..errors import ConfigError
from .repeats import RepeatOptions
from .server_config import ServerConfig
from .workload import DatasetName, WorkloadConfig

__all__ = ["NodeConfig"]


class NodeConfig(WorkloadConfig, ServerConfig, RepeatOptions):
    """Everything a NodeTest needs: the server's settings (all :class:`ServerConfig` fields, flat, as
    SGLang names them), the workload (all :class:`WorkloadConfig` fields), where results go and how
    often the run is repeated (:class:`RepeatOptions`).

    Example (the spec's API; ``backend="sim"`` needs no GPU)::

        config = NodeConfig(model_path="meta-llama/Llama-2-7b-hf", gpu_id=0, request_rate=10.0,
                            num_prompts=100, backend="sim")
    """

    dataset_name: DatasetName = "sharegpt"
    output_dir: Path = Field(default=Path("results/node_test"), description="where result files go")
    name: str | None = Field(default=None, description="label of this run in reports and comparisons")
    collect_timeseries: bool = Field(default=True, description="scrape /metrics during the run")
    timeseries_interval_s: float = Field(default=0.5, gt=0, le=3600)
    flush_cache_after_warmup: bool = True
    record_ground_truth: bool = Field(default=False, description="sim only: write the sim's truth log")
    write_plots: bool = True
    progress: bool = Field(default=True, description="show a progress bar during the run")

    @model_validator(mode="after")
    def _node_checks(self) -> NodeConfig:
        if self.record_ground_truth and self.backend != "sim":
            raise ValueError("record_ground_truth needs backend='sim' (only the simulator writes a truth log)")
        return self

    @classmethod
    def yaml_values(cls, data: dict[str, Any]) -> dict[str, Any]:
        """A flat mapping of fields, or a spec-style template with a ``node_config:`` section (its
        ``routing_config:`` section, if any, is for RoutingConfig and ignored here)."""
        if "node_config" in data or "routing_config" in data:
            section = data.get("node_config") or {}
            if not isinstance(section, dict):
                raise ConfigError(
                    "node_config: must be a mapping of server/workload fields, e.g. max_running_requests: 64"
                )
            rest = {k: v for k, v in data.items() if k not in ("node_config", "routing_config")}
            return {**rest, **section}
        return data

    def to_server_config(self) -> ServerConfig:
        """The server part of this config (the API key resolved, not re-read)."""
        values = self.settings_values()
        values.update(server_id=self.server_id, port=self.port, url=self.url, gpu_id=self.gpu_id)
        if self.record_ground_truth and values["sim_ground_truth_log"] is None:
            values["sim_ground_truth_log"] = self.output_dir / "sim_ground_truth.jsonl"
        if self.coverage:
            values["coverage_dir"] = self.coverage_data_dir(self.output_dir)
        return ServerConfig(**values)
