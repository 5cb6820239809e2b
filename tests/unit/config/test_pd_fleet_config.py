"""RoutingConfig in PD mode: fleet layout, role flags, one-line errors."""

from __future__ import annotations

from typing import Any

import pytest

from sglang_test_framework.config.router_config import RouterConfig
from sglang_test_framework.config.routing_config import RoutingConfig
from sglang_test_framework.errors import ConfigError


def _pd(**kw: Any) -> RoutingConfig:
    values: dict[str, Any] = dict(
        model_path="m", backend="sim", num_prefill=2, num_decode=1, router=RouterConfig(implementation="smg")
    )
    values.update(kw)
    return RoutingConfig(**values)


def test_pd_fleet_is_prefill_then_decode_with_role_flags() -> None:
    cfg = _pd(prefill_args=["--sim-kv-link-gbps", "100"], decode_args=["--max-running-requests", "8"])
    assert cfg.is_pd and cfg.num_workers == 3 and cfg.num_gpus == 3
    configs = cfg.worker_server_configs(bootstrap_ports=[9001, 9002])
    assert [c.server_id for c in configs] == ["prefill_0", "prefill_1", "decode_0"]
    assert configs[0].sim_args[-6:] == [
        "--disaggregation-mode",
        "prefill",
        "--disaggregation-bootstrap-port",
        "9001",
        "--sim-kv-link-gbps",
        "100",
    ]
    assert configs[2].sim_args[-4:] == ["--disaggregation-mode", "decode", "--max-running-requests", "8"]
    # the breakdown reads the ground truth, so PD sim workers always write it
    assert all(c.sim_ground_truth_log is not None for c in configs)


def test_tp_multiplies_gpus_and_colocated_stays_unchanged() -> None:
    assert _pd(tp_size=2).num_gpus == 6
    plain = RoutingConfig(model_path="m", backend="sim", num_gpus=2)
    assert not plain.is_pd and [c.server_id for c in plain.worker_server_configs()] == ["worker_0", "worker_1"]
    assert plain.worker_server_configs()[0].sim_ground_truth_log is None


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"num_decode": 0}, "PD needs at least one of each"),
        ({"num_gpus": 4}, "num_gpus (4) must equal (num_prefill + num_decode) × tp_size = 3"),
        ({"router_impl": "python"}, "PD routing needs SMG"),
        ({"router": RouterConfig(implementation="sglang-router")}, "PD routing needs SMG"),
        ({"routing_policy": "shortest_queue"}, "routing_policy 'shortest_queue': PD mode runs on SMG"),
    ],
)
def test_bad_pd_settings_name_the_field_and_fix(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises((ConfigError, ValueError)) as info:
        _pd(**changes)
    assert fragment in str(info.value)
