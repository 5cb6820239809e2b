"""RoutingTest with three simulated workers: the real router, our Python router, custom policies,
failures, and the comparison CLI."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from sglang_test_framework.cli import main as cli_main
from sglang_test_framework.config.router_config import RouterConfig
from sglang_test_framework.config.routing_config import RoutingConfig
from sglang_test_framework.scenarios.routing import RoutingTest
from sglang_test_framework.strategies.routing.cache_aware import CacheAwarePolicy
from sglang_test_framework.strategies.routing.factory import RoutingFactory

MODEL = "meta-llama/Meta-Llama-3-8B-Instruct"
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _config(tmp_path: Path, **kw: Any) -> RoutingConfig:
    values: dict[str, Any] = dict(
        model_path=MODEL,
        backend="sim",
        num_gpus=3,
        request_rate=40.0,
        dataset_name="generated-shared-prefix",
        gsp_num_groups=6,
        gsp_prompts_per_group=8,
        gsp_system_prompt_len=1024,
        gsp_question_len=16,
        gsp_output_len=16,
        max_total_tokens=12000,
        output_dir=tmp_path,
        progress=False,
        warmup_requests=1,
    )
    values.update(kw)
    return RoutingConfig(**values)


def test_cache_aware_beats_round_robin_on_shared_prefixes(tmp_path: Path) -> None:
    config = _config(tmp_path, write_plots=True, router=RouterConfig(implementation="sglang-router"))
    comparison = RoutingTest.compare(config, ["cache_aware", "round_robin"])
    table = comparison.table
    assert set(table["router"]) == {"sglang-router"}
    assert (table["completed"] == 48).all()
    assert table.loc["cache_aware", "cache_hit_rate"] > table.loc["round_robin", "cache_hit_rate"] + 0.1
    rr = comparison.results["round_robin"].per_worker
    assert rr is not None and (rr[rr["worker_id"] != "unattributed"]["requests"] == 16).all()
    assert all(p.exists() for p in comparison.files.values())


def test_custom_policy_example_routes_traffic(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    spec = importlib.util.spec_from_file_location("custom_policy_example", EXAMPLES / "custom_policy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(quick=True) == 0
    per_worker = pd.read_csv(tmp_path / "results/example_custom_policy/per_worker.csv")
    assert per_worker["requests"].sum() == 30


def test_shortest_queue_balances_skewed_requests(tmp_path: Path) -> None:
    cfg = _config(
        tmp_path,
        routing_policy="shortest_queue",
        dataset_name="random",
        num_prompts=60,
        random_input_len=400,
        random_output_len=120,
        random_range_ratio=0.05,
        request_rate=60.0,
        max_total_tokens=None,
        collect_timeseries=True,
        timeseries_interval_s=0.2,
    )
    results = RoutingTest(cfg).run()
    assert results.context["router_impl"] == "python"
    assert results.summary["completed"] == 60
    ts = results.timeseries
    inflight = ts[ts["metric"] == "sglang:num_running_reqs"].groupby("t_s")["value"].agg(["max", "min"])
    busy = inflight[inflight["max"] >= 3]
    assert not busy.empty
    assert ((busy["max"] - busy["min"]) <= 2).mean() > 0.8  # workers' in-flight counts stay within ±2


def test_killed_worker_is_reported_and_run_finishes(tmp_path: Path) -> None:
    cfg = _config(
        tmp_path,
        routing_policy="round_robin",
        router_impl="python",
        dataset_name="random",
        num_prompts=60,
        random_input_len=100,
        random_output_len=150,
        random_range_ratio=1.0,
        request_rate=20.0,
        max_total_tokens=None,
        enable_node_failures=True,
        failure_schedule={1.0: [1], 1.5: []},
    )
    results = RoutingTest(cfg).run()
    s = results.summary
    assert s["completed"] + s["failed"] == 60 and s["failed"] > 0
    events = results.context["failure_events"]
    assert [(e["event"], e["worker_id"]) for e in events] == [("killed", "worker_1"), ("restarted", "worker_1")]
    served = results.context["server_requests_served"]
    assert results.context["server_counter_resets"] == ["worker_1"]  # its counter restarted from 0
    assert all(v >= 0 for v in served.values())  # never a negative count across the restart
    table = results.per_worker
    assert table is not None
    w1 = table[table["worker_id"] == "worker_1"].iloc[0]
    assert w1["failed"] > 0
    failed = results.requests[~results.requests["success"]]
    assert failed["error"].notna().all()


def test_cli_compares_policies(tmp_path: Path, capsys: Any) -> None:
    code = cli_main(
        [
            "routing",
            "--num-gpus",
            "2",
            "--policies",
            "round_robin",
            "shortest_queue",
            "--dataset-name",
            "random",
            "--num-prompts",
            "12",
            "--random-input-len",
            "64",
            "--random-output-len",
            "8",
            "--request-rate",
            "30",
            "--output-dir",
            str(tmp_path),
            "-q",
        ]
    )
    assert code == 0
    assert "shortest_queue" in capsys.readouterr().out
    assert (tmp_path / "comparison.csv").exists()
    assert list((tmp_path / "plots").glob("*.png"))


class _KnobSpy(CacheAwarePolicy):
    """cache_aware that records the knobs RoutingTest created it with."""

    created: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, workers: Sequence[str], **knobs: Any) -> None:
        super().__init__(workers, **knobs)
        _KnobSpy.created.append(knobs)


def test_router_knobs_reach_the_python_cache_aware_policy(tmp_path: Path) -> None:
    RoutingFactory.register("knob_spy_cache_aware", _KnobSpy)
    router = RouterConfig(
        cache_threshold=0.7,
        balance_abs_threshold=3,
        balance_rel_threshold=2.0,
        max_tree_size=4096,
        eviction_interval_secs=7,
    )
    cfg = _config(
        tmp_path,
        num_gpus=2,
        routing_policy="knob_spy_cache_aware",
        dataset_name="random",
        num_prompts=8,
        random_input_len=32,
        random_output_len=4,
        max_total_tokens=None,
        collect_timeseries=False,
        write_plots=False,
        router=router,
    )
    results = RoutingTest(cfg).run()
    assert results.context["router_impl"] == "python" and results.summary["completed"] == 8
    assert _KnobSpy.created == [
        {
            "cache_threshold": 0.7,
            "balance_abs_threshold": 3,
            "balance_rel_threshold": 2.0,
            "max_tree_size": 4096,
            "eviction_interval_s": 7,
        }
    ]
