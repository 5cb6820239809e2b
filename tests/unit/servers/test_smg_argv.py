"""SMG command lines: every resilience knob explicit, policy knobs, PD mode, and RouterConfig checks."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from sglang_test_framework.config.router_config import SMG_POLICIES, RouterConfig, real_router_policies
from sglang_test_framework.config.routing_config import RoutingConfig
from sglang_test_framework.errors import RouterError
from sglang_test_framework.servers.router import real_router_argv
from sglang_test_framework.servers.smg import PdWorkers, smg_argv, smg_pd_argv

URLS = ["http://127.0.0.1:31001", "http://127.0.0.1:31002"]


def _value(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_smg_argv_passes_resilience_and_policy_knobs_explicitly() -> None:
    cfg = RouterConfig(
        disable_circuit_breaker=True, worker_overload_protection=False, prefix_token_count=64, queue_size=0
    )
    argv = smg_argv(cfg, "prefix_hash", URLS, 30080, 29080)
    assert argv[1:3] == ["-m", "smg.launch_router"]
    assert argv[argv.index("--worker-urls") + 1 : argv.index("--worker-urls") + 3] == URLS
    assert _value(argv, "--policy") == "prefix_hash" and _value(argv, "--prefix-token-count") == "64"
    for flag in (
        "--retry-max-retries",
        "--cb-failure-threshold",
        "--max-concurrent-requests",
        "--load-monitor-interval",
    ):
        assert flag in argv
    assert _value(argv, "--queue-size") == "0" and _value(argv, "--host") == "127.0.0.1"
    assert "--disable-circuit-breaker" in argv and "--disable-worker-overload-protection" in argv
    assert "--worker-overload-waiting-requests" not in argv


def test_resilience_settings_are_plain_json() -> None:
    settings = RouterConfig(disable_circuit_breaker=True).resilience_settings("smg")
    assert settings["circuit_breaker"] == "disabled" and settings["retries"]["max_attempts"] == 5
    assert settings["overload_protection"] == {"waiting_requests": 8, "token_usage": 0.8, "shed": False}
    json.dumps(settings)
    assert RouterConfig().resilience_settings("python")["retries"] == "none"


def test_smg_pd_argv_lists_prefill_with_bootstrap_ports_and_leg_policies() -> None:
    cfg = RouterConfig(prefill_policy="bucket", decode_policy="least_load")
    workers = PdWorkers(prefill=((URLS[0], 8998), ("http://127.0.0.1:31003", None)), decode=(URLS[1],))
    argv = smg_pd_argv(cfg, workers, 30080, 29080)
    assert "--pd-disaggregation" in argv
    i = argv.index("--prefill")
    assert argv[i : i + 6] == ["--prefill", URLS[0], "8998", "--prefill", "http://127.0.0.1:31003", "none"]
    assert _value(argv, "--decode") == URLS[1]
    assert _value(argv, "--prefill-policy") == "bucket" and _value(argv, "--decode-policy") == "least_load"
    assert workers.urls == [URLS[0], "http://127.0.0.1:31003", URLS[1]]
    with pytest.raises(RouterError, match="at least one prefill and one decode"):
        smg_pd_argv(cfg, PdWorkers(prefill=(), decode=(URLS[1],)), 1, 2)


def test_policy_checks_name_the_router() -> None:
    with pytest.raises(RouterError, match=r"not an SMG 1\.13 policy"):
        smg_argv(RouterConfig(), "shortest_queue", URLS, 1, 2)
    with pytest.raises(RouterError, match="not a policy of sglang-router"):
        real_router_argv(RouterConfig(implementation="sglang-router"), "least_load", URLS, 1, 2)
    with pytest.raises(RouterError, match="PD disaggregation needs implementation 'smg'"):
        real_router_argv(
            RouterConfig(implementation="sglang-router"),
            "round_robin",
            URLS,
            1,
            2,
            PdWorkers(((URLS[0], None),), (URLS[1],)),
        )
    with pytest.raises(ValidationError, match="bucket"):
        RouterConfig(decode_policy="bucket")
    assert real_router_policies("smg") == SMG_POLICIES and real_router_policies("python") == ()


def test_routing_config_runs_smg_policies_on_smg_and_sglang_router_only_its_four() -> None:
    smg = RoutingConfig(
        model_path="m", backend="sim", num_gpus=2, routing_policy="least_load", router={"implementation": "smg"}
    )
    assert smg.uses_real_router and smg.router_implementation == "smg"
    old = RoutingConfig(
        model_path="m",
        backend="sim",
        num_gpus=2,
        routing_policy="least_load",
        router={"implementation": "sglang-router"},
    )
    assert not old.uses_real_router and old.router_implementation == "python"
    py = RoutingConfig(
        model_path="m", backend="sim", num_gpus=2, routing_policy="round_robin", router={"implementation": "python"}
    )
    assert py.router_implementation == "python"
