"""RoutingConfig composes the server settings; router knobs reach our Python cache_aware policy."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from sglang_test_framework.config.node_config import NodeConfig
from sglang_test_framework.config.router_config import RouterConfig
from sglang_test_framework.config.routing_config import RoutingConfig
from sglang_test_framework.config.server_config import ServerConfig, ServerSettings
from sglang_test_framework.errors import ConfigError
from sglang_test_framework.strategies.routing.base import BaseRoutingPolicy, RoutingRequest, WorkerMetrics
from sglang_test_framework.strategies.routing.cache_aware import CacheAwarePolicy
from sglang_test_framework.strategies.routing.factory import RoutingFactory

MODEL = "meta-llama/Llama-2-7b-hf"

# A non-default value for every ServerSettings field (the test below checks none is missing).
SETTINGS: dict[str, Any] = {
    "api_key": "k",
    "api_key_file": None,
    "model_path": MODEL,
    "backend": "sim",
    "host": "127.0.0.2",
    "tp_size": 2,
    "max_running_requests": 7,
    "max_queued_requests": 9,
    "max_total_tokens": 5000,
    "mem_fraction_static": 0.5,
    "chunked_prefill_size": 256,
    "max_prefill_tokens": 1024,
    "schedule_policy": "lpm",
    "schedule_conservativeness": 0.7,
    "enable_torch_compile": True,
    "disable_radix_cache": True,
    "enable_metrics": False,
    "enable_cache_report": False,
    "served_model_name": "served",
    "context_length": 4096,
    "random_seed": 3,
    "log_level": "debug",
    "extra_args": ["--page-size", "16"],
    "env": {"A": "1"},
    "startup_timeout_s": 30.0,
    "sim_profile": "h100",
    "sim_ground_truth_log": Path("truth.jsonl"),
    "sim_args": ["--sim-jitter-cv", "0"],
    "sim_workers_per_process": 2,
    "coverage": True,
    "coverage_include": ["*/sglang/srt/*"],
    "coverage_dir": Path("cov"),
}
# placement='ray' validates only where Ray is installed (the ray extra); checked in its own test below.
RAY_SETTINGS: dict[str, Any] = {
    "placement": "ray",
    "ray_address": "127.0.0.1:6379",
    "ray_num_gpus": 1.0,
    "ray_num_cpus": 2.0,
    "ray_resources": {"h100": 1.0},
    "ray_spread": False,
}


def test_server_settings_are_one_model_shared_by_node_and_routing_configs() -> None:
    per_server_only = {"server_id", "port", "url", "gpu_id"}
    assert set(ServerConfig.model_fields) - set(ServerSettings.model_fields) == per_server_only
    assert set(ServerSettings.model_fields) <= set(RoutingConfig.model_fields)
    assert set(ServerConfig.model_fields) <= set(NodeConfig.model_fields)
    assert set(SETTINGS) | set(RAY_SETTINGS) == set(ServerSettings.model_fields)
    for name in ServerSettings.model_fields:
        assert RoutingConfig.model_fields[name].annotation == ServerSettings.model_fields[name].annotation, name


def test_every_server_setting_reaches_every_worker() -> None:
    cfg = RoutingConfig(num_gpus=4, base_port=31000, worker_sim_args={1: ["--sim-fail-first-n", "2"]}, **SETTINGS)
    workers = cfg.worker_server_configs()
    assert [w.server_id for w in workers] == ["worker_0", "worker_1"]
    assert [(w.port, w.gpu_id) for w in workers] == [(31000, 0), (31001, 2)]
    for i, worker in enumerate(workers):
        for name, value in SETTINGS.items():
            got = getattr(worker, name)
            if name == "sim_args":
                assert got == [*value, *(["--sim-fail-first-n", "2"] if i == 1 else [])]
            elif name == "sim_ground_truth_log":
                assert got == Path(f"truth.worker_{i}.jsonl")
            else:
                assert got == value, name


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs the ray extra: pip install '.[ray]'")
def test_ray_settings_reach_every_worker() -> None:
    local_fleet_only = {"sim_workers_per_process"}  # a one-process sim fleet stays local
    values = {k: v for k, v in SETTINGS.items() if k not in local_fleet_only} | RAY_SETTINGS
    for worker in RoutingConfig(num_gpus=4, **values).worker_server_configs():
        for name, value in RAY_SETTINGS.items():
            assert getattr(worker, name) == value, name


def test_external_workers_get_their_urls_and_the_shared_settings() -> None:
    cfg = RoutingConfig(
        model_path=MODEL, backend="external", worker_urls=["http://a:1", "http://b:2"], served_model_name="s"
    )
    workers = cfg.worker_server_configs()
    assert [(w.url, w.served_model_name, w.backend) for w in workers] == [
        ("http://a:1", "s", "external"),
        ("http://b:2", "s", "external"),
    ]


def test_spec_constructor_and_router_config_alias() -> None:
    cfg = RoutingConfig(model_path=MODEL, num_gpus=3, routing_policy="cache_aware", backend="sim")
    assert cfg.num_workers == 3 and cfg.uses_real_router
    aliased = RoutingConfig(model_path=MODEL, router_config=RouterConfig(cache_threshold=0.8))
    assert aliased.router.cache_threshold == 0.8 and aliased.router_config is None
    assert "router_config" not in aliased.model_dump()
    assert aliased.with_updates(num_gpus=2).router.cache_threshold == 0.8


def test_server_extra_args_is_a_deprecated_name_of_extra_args(tmp_path: Path) -> None:
    with pytest.warns(DeprecationWarning, match="server_extra_args is deprecated"):
        cfg = RoutingConfig(model_path=MODEL, server_extra_args=["--page-size", "16"])  # type: ignore[call-arg]
    assert cfg.extra_args == ["--page-size", "16"]
    assert cfg.worker_server_configs()[0].extra_args == ["--page-size", "16"]
    with pytest.warns(DeprecationWarning):
        assert cfg.server_extra_args == ["--page-size", "16"]
    old_flat = tmp_path / "old.yaml"
    old_flat.write_text(f"model_path: {MODEL}\nserver_extra_args: ['--a']\n")
    old_template = tmp_path / "template.yaml"
    old_template.write_text("node_config:\n  server_extra_args: ['--b']\n")
    with pytest.warns(DeprecationWarning):
        assert RoutingConfig.from_yaml(old_flat).extra_args == ["--a"]
    with pytest.warns(DeprecationWarning):
        assert RoutingConfig.from_yaml(old_template, model_path=MODEL).extra_args == ["--b"]
    with pytest.raises(ConfigError, match="give only extra_args"):
        RoutingConfig.build(model_path=MODEL, server_extra_args=["--a"], extra_args=["--b"])


def test_router_knobs_reach_the_python_cache_aware_policy() -> None:
    router = RouterConfig(
        cache_threshold=0.75,
        balance_abs_threshold=7,
        balance_rel_threshold=2.5,
        max_tree_size=1234,
        eviction_interval_secs=9,
    )
    cfg = RoutingConfig(model_path=MODEL, num_gpus=2, router_impl="python", router=router)
    policy = RoutingFactory.create(cfg.routing_policy, ["w0", "w1"], router_config=cfg.router)
    assert isinstance(policy, CacheAwarePolicy)
    assert (
        policy.cache_threshold,
        policy.balance_abs_threshold,
        policy.balance_rel_threshold,
        policy.max_tree_size,
        policy.eviction_interval_s,
    ) == (0.75, 7, 2.5, 1234, 9)
    explicit = RoutingFactory.create("cache_aware", ["w0"], router_config=router, cache_threshold=0.1)
    assert isinstance(explicit, CacheAwarePolicy) and explicit.cache_threshold == 0.1


class _NoKnobs(BaseRoutingPolicy):
    def route_request(self, request: RoutingRequest, server_metrics: Mapping[str, WorkerMetrics]) -> str:
        return self.candidates(server_metrics)[0]


class _PassThrough(_NoKnobs):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)


class _OneKnob(_NoKnobs):
    def __init__(self, workers: Sequence[str], cache_threshold: float = 0.0, **unused: Any) -> None:
        super().__init__(workers)
        self.cache_threshold = cache_threshold


class _CacheAwareSubclass(CacheAwarePolicy):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)


def test_policies_get_only_the_knobs_their_constructors_name() -> None:
    router = RouterConfig(cache_threshold=0.6, max_tree_size=99)
    for name, cls in [("test_no_knobs", _NoKnobs), ("test_pass_through", _PassThrough), ("test_one_knob", _OneKnob)]:
        RoutingFactory.register(name, cls)
        assert isinstance(RoutingFactory.create(name, ["w0"], router_config=router), cls)
    one = RoutingFactory.create("test_one_knob", ["w0"], router_config=router)
    assert isinstance(one, _OneKnob) and one.cache_threshold == 0.6
    RoutingFactory.register("test_cache_aware_subclass", _CacheAwareSubclass)
    sub = RoutingFactory.create("test_cache_aware_subclass", ["w0"], router_config=router)
    assert isinstance(sub, CacheAwarePolicy) and (sub.cache_threshold, sub.max_tree_size) == (0.6, 99)


def test_cache_aware_evicts_every_interval_like_the_real_router() -> None:
    now = [0.0]
    policy = CacheAwarePolicy(["w0"], max_tree_size=10, eviction_interval_s=5.0, clock=lambda: now[0])
    metrics = {"w0": WorkerMetrics()}
    policy.route_request(RoutingRequest("/generate", "a" * 30), metrics)
    policy.route_request(RoutingRequest("/generate", "b" * 30), metrics)
    assert policy.tree("w0").size_chars == 60  # over budget until the next eviction
    now[0] = 5.0
    policy.route_request(RoutingRequest("/generate", "c" * 4), metrics)
    tree = policy.tree("w0")
    assert tree.evicted_chars == 60 and tree.size_chars == 4
    on_insert = CacheAwarePolicy(["w0"], max_tree_size=10)
    on_insert.route_request(RoutingRequest("/generate", "a" * 30), metrics)
    assert on_insert.tree("w0").size_chars <= 10
