"""Python routing policies and the factory."""

from __future__ import annotations

import pytest

from sglang_test_framework.strategies.routing.base import BaseRoutingPolicy, RoutingRequest, WorkerMetrics
from sglang_test_framework.strategies.routing.factory import RoutingFactory

W = ["w0", "w1", "w2"]


def req(text: str) -> RoutingRequest:
    return RoutingRequest("/generate", text)


def metrics(**in_flight: int) -> dict[str, WorkerMetrics]:
    return {w: WorkerMetrics(in_flight=in_flight.get(w, 0), queue_depth=in_flight.get(w, 0)) for w in W}


def test_round_robin_and_random() -> None:
    rr = RoutingFactory.create("round_robin", W)
    assert [rr.route_request(req("x"), metrics()) for _ in range(4)] == ["w0", "w1", "w2", "w0"]
    r1 = [RoutingFactory.create("random", W).route_request(req("x"), metrics()) for _ in range(1)]
    assert r1[0] in W


def test_shortest_queue_picks_the_least_loaded() -> None:
    sq = RoutingFactory.create("shortest_queue", W)
    assert sq.route_request(req("x"), metrics(w0=3, w1=1, w2=2)) == "w1"
    # simulated skewed sizes: long requests stay in flight, the policy keeps counts within one
    load = dict.fromkeys(W, 0)
    for i in range(30):
        w = sq.route_request(req("x"), {k: WorkerMetrics(in_flight=v) for k, v in load.items()})
        load[w] += 1
        if i % 3 == 0:  # a short request finishes
            load[min(load, key=load.__getitem__)] = max(0, load[min(load, key=load.__getitem__)] - 1)
    assert max(load.values()) - min(load.values()) <= 1


def test_cache_aware_keeps_prefixes_together_and_balances() -> None:
    ca = RoutingFactory.create("cache_aware", W)
    a = "system prompt alpha " * 20
    b = "system prompt beta " * 20
    first = ca.route_request(req(a + "q1"), metrics())
    assert ca.route_request(req(a + "q2"), metrics()) == first
    other = ca.route_request(req(b + "q1"), metrics(**{first: 1}))
    assert other != first
    assert ca.route_request(req(a + "q3"), metrics(**{first: 200})) != first  # imbalance → least loaded


def test_power_of_two_prefers_lower_load() -> None:
    p2 = RoutingFactory.create("power_of_two", ["w0", "w1"])
    m = {"w0": WorkerMetrics(queue_depth=5), "w1": WorkerMetrics(queue_depth=0)}
    assert p2.route_request(req("x"), m) == "w1"


def test_factory_errors_and_registration() -> None:
    with pytest.raises(ValueError, match="available"):
        RoutingFactory.create("nope", W)
    with pytest.raises(TypeError):
        RoutingFactory.register("bad", dict)  # type: ignore[arg-type]

    class Spec(BaseRoutingPolicy):
        def route_request(self, request, server_metrics):  # type: ignore[no-untyped-def]
            scores = [(w, m["throughput"] / (m["latency"] * (1 + m["queue_depth"]))) for w, m in server_metrics.items()]
            return max(scores, key=lambda x: x[1])[0]

    RoutingFactory.register("spec_example", Spec)
    policy = RoutingFactory.create("spec_example", W)
    m = {w: WorkerMetrics(throughput=10.0, latency=0.1, queue_depth=q) for w, q in zip(W, (3, 0, 1), strict=True)}
    assert policy.route_request(req("x"), m) == "w1"
    assert m["w1"]["queue_depth"] == 0 and m["w1"].get("nope", 5) == 5
