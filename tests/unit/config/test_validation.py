"""Every config number is finite and bounded; YAML files fail in one line naming the file, field and fix."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from sglang_test_framework.config.node_config import NodeConfig
from sglang_test_framework.config.router_config import RouterConfig
from sglang_test_framework.config.routing_config import RoutingConfig
from sglang_test_framework.config.server_config import ServerConfig
from sglang_test_framework.config.workload import MAX_NUM_PROMPTS, WorkloadConfig
from sglang_test_framework.errors import ConfigError

MODEL = "meta-llama/Llama-2-7b-hf"
INF = math.inf
NAN = math.nan


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"request_rate": 1e-300}, "request_rate"),
        ({"request_rate": 0.0}, "request_rate"),
        ({"request_rate": NAN}, "request_rate"),
        ({"request_rate": -INF}, "request_rate"),
        ({"request_rate": 1e12}, "request_rate"),
        ({"burstiness": INF}, "burstiness"),
        ({"burstiness": NAN}, "burstiness"),
        ({"burstiness": 1e-9}, "burstiness"),
        ({"num_prompts": 10**12}, "num_prompts"),
        ({"num_prompts": MAX_NUM_PROMPTS + 1}, "num_prompts"),
        ({"random_input_len": 10**9}, "random_input_len"),
        ({"sharegpt_context_len": 10**9}, "sharegpt_context_len"),
        ({"random_range_ratio": NAN}, "random_range_ratio"),
        ({"seed": -1}, "seed"),
        ({"multi_turn_think_time_s": INF}, "multi_turn_think_time_s"),
        ({"request_timeout_s": INF}, "request_timeout_s"),
        ({"gsp_zipf_alpha": NAN}, "gsp_zipf_alpha"),
        ({"timeseries_interval_s": NAN}, "timeseries_interval_s"),
        ({"mem_fraction_static": NAN}, "mem_fraction_static"),
        ({"schedule_conservativeness": INF}, "schedule_conservativeness"),
        ({"startup_timeout_s": INF}, "startup_timeout_s"),
        ({"max_total_tokens": 10**15}, "max_total_tokens"),
        ({"context_length": 10**12}, "context_length"),
        ({"max_concurrency": 10**9}, "max_concurrency"),
    ],
)
def test_non_finite_tiny_and_huge_numbers_are_rejected_naming_the_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        NodeConfig.build(model_path=MODEL, **values)
    message = str(info.value)
    assert f"{field}:" in message and "\n" not in message


@pytest.mark.parametrize(
    "values",
    [
        {"cache_threshold": NAN},
        {"balance_rel_threshold": INF},
        {"metrics_interval_s": INF},
        {"max_tree_size": 2**50},
        {"request_timeout_secs": 10**9},
    ],
)
def test_router_numbers_are_bounded(values: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=next(iter(values))):
        RouterConfig.build(**values)


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"failure_schedule": {-1.0: [0]}}, "failure_schedule"),
        ({"failure_schedule": {INF: [0]}}, "failure_schedule"),
        ({"base_port": 65535}, "past 65535"),
        ({"num_gpus": 10**6}, "num_gpus"),
        ({"backend": "external", "worker_urls": ["localhost:30000"]}, "not a base URL"),
        ({"enable_node_failures": True}, "enable_node_failures needs failure_schedule"),
        ({"backend": "sglang", "worker_sim_args": {0: ["--sim-fail-first-n", "1"]}}, "worker_sim_args need"),
    ],
)
def test_routing_fleet_values_are_checked(values: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        RoutingConfig.build(**{"model_path": MODEL, "num_gpus": 2, **values})
    assert "\n" not in str(info.value)


def test_infinite_request_rate_means_all_at_once() -> None:
    assert WorkloadConfig(request_rate=INF).request_rate == INF
    assert WorkloadConfig(request_rate=1e-6).request_rate == 1e-6
    assert ServerConfig(model_path=MODEL, backend="external", url="http://h:1").url == "http://h:1"


def test_unknown_fields_suggest_the_closest_name_in_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        NodeConfig.build(model_path=MODEL, max_running_request=5, request_rate=-1)
    message = str(info.value)
    assert "max_running_request: unknown field; did you mean max_running_requests?" in message
    assert "request_rate:" in message and "\n" not in message
    with pytest.raises(ConfigError, match=r"router\.cache_treshold: unknown field; did you mean cache_threshold\?"):
        RoutingConfig.build(model_path=MODEL, router={"cache_treshold": 0.5})


def _yaml(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "config.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


@pytest.mark.parametrize(
    ("model", "content", "match"),
    [
        (NodeConfig, b"model_path: m\nname: caf\xe9\n", r"config\.yaml:2: the config file is not UTF-8 .*re-save it"),
        (NodeConfig, "- a\n- b\n", "must contain a mapping of field: value lines, got a list"),
        (NodeConfig, "model_path: m\nrequest_rate: [1\n", r"config\.yaml:\d+:\d+: not valid YAML"),
        (NodeConfig, "model_path: m\n1: x\n", "key 1 is not a field name"),
        (NodeConfig, "model_path: m\nmax_running_request: 5\n", "did you mean max_running_requests"),
        (NodeConfig, "model_path: m\nrequest_rate: .nan\n", "request_rate: must be between"),
        (NodeConfig, "node_config: [1, 2]\n", "node_config: must be a mapping"),
        (
            RoutingConfig,
            "node_config:\n  max_runing_requests: 5\n",
            r"node_config\.max_runing_requests: .*did you mean",
        ),
        (RoutingConfig, "routing_config:\n  polcy: x\n", r"routing_config\.polcy: .*did you mean policy"),
    ],
)
def test_bad_yaml_files_fail_in_one_line_naming_the_file(
    tmp_path: Path, model: type[NodeConfig] | type[RoutingConfig], content: str | bytes, match: str
) -> None:
    path = _yaml(tmp_path, content)
    with pytest.raises(ConfigError, match=match) as info:
        model.from_yaml(path, model_path=MODEL)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_yaml_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    path = _yaml(tmp_path, "\ufeffmodel_path: m\nrequest_rate: 5\n".encode())
    assert NodeConfig.from_yaml(path).request_rate == 5.0


def test_with_updates_validates_and_model_copy_does_not() -> None:
    base = NodeConfig(model_path=MODEL)
    with pytest.raises(ConfigError, match="request_rate"):
        base.with_updates(request_rate=-1.0)
    assert base.with_updates(request_rate=3.0).request_rate == 3.0
