"""Config validation: unknown keys rejected, errors name the field, YAML templates load."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from sglang_test_framework.config.node_config import NodeConfig
from sglang_test_framework.config.routing_config import RoutingConfig
from sglang_test_framework.config.server_config import ServerConfig
from sglang_test_framework.config.sweep_config import SweepConfig
from sglang_test_framework.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "configs"
MODEL = "meta-llama/Llama-2-7b-hf"


def _error_fields(exc: ValidationError) -> set[str]:
    return {".".join(str(p) for p in e["loc"]) for e in exc.errors()}


def test_spec_node_config_works_verbatim_with_sim_backend() -> None:
    cfg = NodeConfig(model_path=MODEL, gpu_id=0, request_rate=10.0, num_prompts=100, backend="sim")
    assert cfg.port == 30000 and cfg.tp_size == 1 and cfg.dataset_name == "sharegpt"
    server = cfg.to_server_config()
    assert server.backend == "sim" and server.model_path == MODEL


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"request_rate": -1.0}, "request_rate"),
        ({"num_prompts": 0}, "num_prompts"),
        ({"max_running_requests": 0}, "max_running_requests"),
        ({"mem_fraction_static": 1.5}, "mem_fraction_static"),
        ({"tp_size": 0}, "tp_size"),
        ({"random_range_ratio": 2.0}, "random_range_ratio"),
        ({"max_running_request": 5}, "max_running_request"),
    ],
)
def test_invalid_node_config_names_the_field(values: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        NodeConfig(model_path=MODEL, **values)
    assert field in _error_fields(info.value) or field in str(info.value)


def test_unknown_key_message_says_how_to_fix() -> None:
    with pytest.raises(ConfigError, match="max_running_request: unknown field"):
        NodeConfig.build(model_path=MODEL, max_running_request=5)


def test_backend_specific_fields_are_checked() -> None:
    with pytest.raises(ValidationError, match="url"):
        ServerConfig(model_path=MODEL, backend="external")
    with pytest.raises(ValidationError, match="sim_args"):
        ServerConfig(model_path=MODEL, backend="sglang", sim_args=["--sim-fail-first-n", "1"])
    with pytest.raises(ValidationError, match="record_ground_truth"):
        NodeConfig(model_path=MODEL, backend="sglang", record_ground_truth=True)


def test_yaml_round_trip_and_file_errors(tmp_path: Path) -> None:
    cfg = NodeConfig(model_path=MODEL, max_running_requests=64, request_rate=5.0)
    path = tmp_path / "node.yaml"
    cfg.to_yaml(path)
    assert NodeConfig.from_yaml(path) == cfg
    path.write_text("model_path: m\nrequest_rate: -3\n")
    with pytest.raises(ConfigError, match="request_rate"):
        NodeConfig.from_yaml(path)
    with pytest.raises(ConfigError, match="does not exist"):
        NodeConfig.from_yaml(tmp_path / "missing.yaml")


def test_every_shipped_yaml_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    monkeypatch.chdir(EXAMPLES.parents[1])  # shipped YAMLs name files relative to the repository root
    files = sorted(EXAMPLES.glob("*.yaml"))
    assert len(files) >= 4
    for path in files:
        data = yaml.safe_load(path.read_text())
        extra = {} if "model_path" in data else {"model_path": MODEL}
        is_template = "node_config" in data or "routing_config" in data
        if is_template or "routing" in path.name:
            assert RoutingConfig.from_yaml(path, **extra).num_workers >= 1
        if is_template or "routing" not in path.name:
            assert NodeConfig.from_yaml(path, **extra).model_path


def test_spec_templates_map_to_fields() -> None:
    high = RoutingConfig.from_yaml(EXAMPLES / "high_throughput.yaml", model_path=MODEL)
    assert high.routing_policy == "cache_aware" and high.router.balance_abs_threshold == 32
    assert high.max_running_requests == 512 and high.enable_torch_compile
    low = NodeConfig.from_yaml(EXAMPLES / "low_latency.yaml", model_path=MODEL)
    assert low.max_running_requests == 32 and low.schedule_conservativeness == 0.5
    assert RoutingConfig.from_yaml(EXAMPLES / "low_latency.yaml", model_path=MODEL).routing_policy == "shortest_queue"


def test_routing_config_fleet_layout() -> None:
    cfg = RoutingConfig(
        model_path=MODEL, num_gpus=4, tp_size=2, backend="sglang", base_port=31000, max_running_requests=64
    )
    workers = cfg.worker_server_configs()
    assert [w.gpu_ids for w in workers] == [[0, 1], [2, 3]]
    assert [w.port for w in workers] == [31000, 31001]
    assert {w.server_id for w in workers} == {"worker_0", "worker_1"}
    with pytest.raises(ValidationError, match="multiple of tp_size"):
        RoutingConfig(model_path=MODEL, num_gpus=3, tp_size=2)
    with pytest.raises(ValidationError, match=r"not a policy of the real (smg|sglang-router)"):
        RoutingConfig(model_path=MODEL, routing_policy="shortest_queue", router_impl="sglang")
    with pytest.raises(ValidationError, match="out of range"):
        RoutingConfig(model_path=MODEL, num_gpus=2, failure_schedule={5.0: [3]})


def test_sweep_points_and_raw_flags(tmp_path: Path) -> None:
    sweep = SweepConfig(
        base=NodeConfig(model_path=MODEL),
        output_dir=tmp_path,
        grid={"max_running_requests": [32, 64], "--hicache-mem-layout": ["layer_first"]},
    )
    points = sweep.points()
    assert [p.name for p in points] == [
        "max_running_requests=32,hicache-mem-layout=layer_first",
        "max_running_requests=64,hicache-mem-layout=layer_first",
    ]
    cfg = sweep.point_config(points[1])
    assert cfg.max_running_requests == 64
    assert cfg.extra_args[-2:] == ["--hicache-mem-layout", "layer_first"]
    with pytest.raises(ValidationError, match="not a NodeConfig field"):
        SweepConfig(base=NodeConfig(model_path=MODEL), grid={"max_runing": [1]})
