"""placement='ray' and client_nodes without a cluster: the config fields, the error without Ray, capacity
arithmetic."""

from __future__ import annotations

import builtins
import importlib.util
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from sglang_test_framework.cli import main as cli_main
from sglang_test_framework.config.routing_config import RoutingConfig
from sglang_test_framework.config.server_config import ServerConfig
from sglang_test_framework.errors import ConfigError, ServerLaunchError
from sglang_test_framework.ray_cluster import RayConnection, import_ray, machine_id
from sglang_test_framework.servers.ray_backend import _fits

MODEL = "meta-llama/Meta-Llama-3-8B-Instruct"
HAS_RAY = importlib.util.find_spec("ray") is not None


def _hide_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make Ray look uninstalled: find_spec says so and ``import ray`` fails."""
    find_spec = importlib.util.find_spec
    real_import = builtins.__import__

    def no_ray_spec(name: str, *args: Any) -> Any:
        return None if name == "ray" or name.startswith("ray.") else find_spec(name, *args)

    def no_ray_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", no_ray_spec)
    monkeypatch.setattr(builtins, "__import__", no_ray_import)
    monkeypatch.delitem(sys.modules, "ray", raising=False)


def test_ray_fields_need_placement_ray() -> None:
    with pytest.raises(ValidationError, match="ray_num_gpus need placement='ray'"):
        ServerConfig(model_path=MODEL, ray_num_gpus=1)
    with pytest.raises(ValidationError, match="ray_address, ray_spread need placement='ray'"):
        RoutingConfig(model_path=MODEL, ray_address="127.0.0.1:6379", ray_spread=False)


def test_local_fleet_copies_default_ray_fields_without_error() -> None:
    configs = RoutingConfig(model_path=MODEL, num_gpus=2).worker_server_configs()
    assert [c.placement for c in configs] == ["local", "local"]


@pytest.mark.skipif(not HAS_RAY, reason="needs the ray extra: pip install '.[ray]'")
def test_ray_request_defaults_and_worker_configs() -> None:
    sim = ServerConfig(model_path=MODEL, placement="ray")
    assert sim.ray_request() == {"CPU": 1.0, "GPU": 0.0}
    sglang = ServerConfig(model_path=MODEL, backend="sglang", placement="ray", tp_size=2, ray_resources={"h100": 1})
    assert sglang.ray_request() == {"CPU": 1.0, "GPU": 2.0, "h100": 1.0}
    fleet = RoutingConfig(model_path=MODEL, num_gpus=4, placement="ray", ray_num_gpus=1, ray_address="auto")
    workers = fleet.worker_server_configs()
    assert [w.ray_request()["GPU"] for w in workers] == [1.0] * 4
    assert {w.ray_address for w in workers} == {"auto"}


@pytest.mark.skipif(not HAS_RAY, reason="needs the ray extra: pip install '.[ray]'")
def test_ray_placement_cannot_attach_external_servers() -> None:
    with pytest.raises(ValidationError, match="backend='external' launches none"):
        ServerConfig(model_path=MODEL, backend="external", url="http://127.0.0.1:1", placement="ray")


def test_without_ray_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide_ray(monkeypatch)
    with pytest.raises(ValidationError, match=r"sglang-test-framework\[ray\]"):
        ServerConfig(model_path=MODEL, placement="ray")
    with pytest.raises(ConfigError, match=r"pip install 'sglang-test-framework\[ray\]'"):
        import_ray()


def test_cli_without_ray_exits_2_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _hide_ray(monkeypatch)
    argv = ["routing", "--model-path", MODEL, "--num-gpus", "2", "--placement", "ray", "--output-dir", str(tmp_path)]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert "sglang-test-framework[ray]" in err
    assert err.count("\n") == 1  # one line, no traceback
    assert not any(tmp_path.iterdir())  # nothing started, nothing written


def test_capacity_per_node() -> None:
    node = {"CPU": 4.0, "GPU": 2.0, "h100": 2.0}
    assert _fits(node, {"CPU": 1.0, "GPU": 1.0}) == 2
    assert _fits(node, {"CPU": 1.0, "GPU": 0.0}) == 4
    assert _fits(node, {"CPU": 1.0, "GPU": 4.0}) == 0
    assert _fits(node, {"CPU": 0.5, "GPU": 0.0, "h100": 1.0}) == 2
    assert _fits(node, {"CPU": 1.0, "a100": 1.0}) == 0


def test_machine_id_is_stable() -> None:
    assert machine_id() == machine_id() != ""


def test_client_nodes_fields() -> None:
    with pytest.raises(ValidationError, match="client_ray_address needs client_nodes"):
        RoutingConfig(model_path=MODEL, client_ray_address="auto")
    if HAS_RAY:
        with pytest.raises(ValidationError, match=r"client_processes \(1\) < client_nodes \(2\)"):
            RoutingConfig(model_path=MODEL, client_nodes=2, client_processes=1)
        assert RoutingConfig(model_path=MODEL, client_nodes=2, client_processes=4).client_nodes == 2


def test_client_nodes_without_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide_ray(monkeypatch)
    with pytest.raises(ValidationError, match=r"client_nodes needs Ray, which is not installed: pip install"):
        RoutingConfig(model_path=MODEL, client_nodes=2)


@pytest.mark.skipif(not HAS_RAY, reason="needs the ray extra: pip install '.[ray]'")
def test_a_one_process_sim_fleet_stays_local() -> None:
    with pytest.raises(ValidationError, match="sim_workers_per_process > 1 runs a fleet in one local process"):
        RoutingConfig(model_path=MODEL, num_gpus=4, placement="ray", sim_workers_per_process=4)


@pytest.mark.skipif(not HAS_RAY, reason="needs the ray extra: pip install '.[ray]'")
def test_an_unreachable_ray_address_fails_at_once() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(ServerLaunchError, match=f"no Ray cluster answers at 127.0.0.1:{port}"):
            RayConnection(f"127.0.0.1:{port}")
