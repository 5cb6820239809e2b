"""Several simulated workers in one process (``sim_workers_per_process`` > 1): which configs share a
process, and that process's command line (``python -m sglang_test_framework.sim --sim-fleet-spec …``,
sim/fleet.py). Pure functions; ServerManager launches the process."""

from __future__ import annotations

import json
from collections.abc import Sequence

from ..config.server_config import ServerConfig
from ..errors import ServerLaunchError
from .argv import server_argv

__all__ = ["SIM_MODULE", "fleet_argv", "fleet_groups"]

SIM_MODULE = "sglang_test_framework.sim"


def _shares_process(config: ServerConfig) -> bool:
    return config.backend == "sim" and config.sim_workers_per_process > 1 and config.placement != "ray"


def fleet_groups(configs: Sequence[ServerConfig]) -> list[list[ServerConfig]]:
    """``configs`` in order, cut into launch groups: consecutive sim configs with
    ``sim_workers_per_process`` = k > 1 go k to a group (one process each, so N workers need ⌈N/k⌉
    processes); every other config is a group of its own."""
    groups: list[list[ServerConfig]] = []
    for config in configs:
        last = groups[-1] if groups else None
        if (
            _shares_process(config)
            and last is not None
            and _shares_process(last[0])
            and len(last) < last[0].sim_workers_per_process
            and last[0].sim_workers_per_process == config.sim_workers_per_process
        ):
            last.append(config)
        else:
            groups.append([config])
    return groups


def fleet_argv(workers: Sequence[tuple[ServerConfig, int]]) -> list[str]:
    """argv of one process serving every ``(config, port)`` of ``workers``: each worker's own flags (as
    :func:`server_argv` builds them for a process of its own) in ``--sim-fleet-spec``.

    Raises:
        ServerLaunchError: a worker is not a sim, or the workers disagree on coverage (one launcher).
    """
    launcher: list[str] | None = None
    spec: list[list[str]] = []
    for config, port in workers:
        argv = server_argv(config, port)
        if config.backend != "sim" or SIM_MODULE not in argv:
            raise ServerLaunchError(f"{config.server_id}: only simulated workers share a process")
        cut = argv.index(SIM_MODULE) + 1
        if launcher is not None and argv[:cut] != launcher:
            raise ServerLaunchError("the workers of one sim process must agree on coverage (one launcher)")
        launcher = argv[:cut]
        spec.append(argv[cut:])
    if launcher is None:
        raise ServerLaunchError("a sim fleet process needs at least one worker")
    return [*launcher, "--sim-fleet-spec", json.dumps(spec)]
