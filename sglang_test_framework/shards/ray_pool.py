"""The Ray transport of a multi-process client (``client_nodes=N``): each shard is a Ray actor, the
shards spread over N nodes of a Ray cluster, and their records stream back to the driver.

``async with RayShardPool(specs, nodes, address, log_dir) as pool: await pool.run(start_ns, on_record,
stats)`` — the interface of :class:`~.pool.LocalShardPool`. Entering connects to Ray, reserves one
bundle per node (a STRICT_SPREAD placement group: N distinct nodes), creates one :class:`ShardActor`
per shard (shard i on node i mod N), opens each shard's sender and measures each shard's clock
(:mod:`.clocks`). :meth:`RayShardPool.run` starts every shard at the same driver time, converted to the
shard's clock, and puts every record back on the driver's timeline before handing it to
``on_record`` in the driver's event loop (one collector, one ``requests.jsonl``). The measured offsets
and their uncertainty are in each shard's :class:`~sglang_test_framework.records.ClientProcessStats`
and in ``client_logs/clocks.json``.

As with local workers: a cancellation stops every shard (in-flight requests come back cancelled); a
shard whose actor dies leaves failed ``client`` records for its unfinished requests; leaving the pool
ends every actor and the placement group (and Ray ends them anyway if the driver dies: they are owned
by it).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import RunError
from ..fileio import write_json_atomic
from ..load.dispatch import DispatchStats
from ..ray_cluster import RayConnection, import_ray, machine_id
from ..records import ClientProcessStats, RequestRecord
from .clocks import ClockAlignment, ClockSample, align_clocks, shift_record
from .pool import READY_TIMEOUT_S, STOP_TIMEOUT_S
from .pool_base import ShardMember, ShardPoolBase, counting
from .runner import ShardRunner, ShardSpec, quiet_gc
from .wire import HEARTBEAT_S, Counters

__all__ = ["CLOCK_PINGS", "RAY_START_LEAD_S", "RayShardPool", "ShardActor"]

logger = logging.getLogger(__name__)

CLOCK_PINGS = 8
"""Pings per shard to measure its clock; the one with the shortest round trip is kept."""
RAY_START_LEAD_S = 0.25
"""The schedule starts this long after the start is sent (a Ray call across hosts takes milliseconds)."""


@dataclass(frozen=True)
class ShardHost:
    """Where a shard actor runs."""

    pid: int
    host: str
    node_id: str
    node_ip: str
    machine_id: str


@dataclass
class ShardBatch:
    """What a shard sends back on each poll: records finished since the last one, live counters and,
    once its load ended, its CPU and wall time and any error."""

    records: list[RequestRecord]
    counters: Counters
    done: bool = False
    error: str | None = None
    stats: ClientProcessStats | None = None


class ShardActor:
    """Runs inside an (async) Ray actor: one shard's sender and schedule, records kept until polled."""

    def __init__(self, spec: ShardSpec) -> None:
        self._spec = spec
        self._runner = ShardRunner(spec)
        self._stack = contextlib.AsyncExitStack()
        self._records: list[RequestRecord] = []
        self._measured: list[ClientProcessStats] = []
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._done = False
        self._error: str | None = None

    async def open(self) -> ShardHost:
        """Open the shard's sender (and quiet the GC: it collects now, before the schedule)."""
        ray = import_ray()
        await self._stack.enter_async_context(self._runner)
        self._stack.enter_context(quiet_gc())
        self._wakeup = asyncio.Event()
        context = ray.get_runtime_context()
        node_ip = str(ray.util.get_node_ip_address())
        return ShardHost(os.getpid(), socket.gethostname(), str(context.get_node_id()), node_ip, machine_id())

    async def clock(self) -> tuple[int, int]:
        """This process's monotonic and wall clocks (ns), read together."""
        return time.monotonic_ns(), time.time_ns()

    async def start(self, start_ns: int) -> None:
        """Start the schedule at ``start_ns`` on this process's clock (returns at once)."""
        self._task = asyncio.create_task(self._load(start_ns))

    async def _load(self, start_ns: int) -> None:
        try:
            await self._runner.run(start_ns, self._add, self._measured)
        except asyncio.CancelledError:
            pass  # stopped by the driver: in-flight requests were recorded as cancelled
        except Exception as exc:
            self._error = f"{type(exc).__name__}: {exc}"
        finally:
            self._done = True
            self._wake()

    def _add(self, record: RequestRecord) -> None:
        self._records.append(record)
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    async def take(self, wait_s: float) -> ShardBatch:
        """The records finished since the last call (waits up to ``wait_s`` for one, or the end)."""
        if self._wakeup is not None and not self._records and not self._done:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), wait_s)
        if self._wakeup is not None:
            self._wakeup.clear()
        records, self._records = self._records, []
        s = self._runner.stats
        counters = Counters(arrived=s.arrived, waiting=s.waiting, in_flight=s.in_flight)
        stats = self._measured[-1] if self._done and self._measured else None
        return ShardBatch(records, counters, self._done, self._error, stats)

    async def stop(self) -> None:
        """Stop the load (in-flight requests are recorded as cancelled and sent on the next poll)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def close(self) -> None:
        """Stop the load and close the sender."""
        await self.stop()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        await self._stack.aclose()


@dataclass
class _Shard(ShardMember):
    actor: Any
    host: ShardHost | None = None
    clock: ClockAlignment | None = None

    @property
    def name(self) -> str:
        where = f" on {self.host.node_ip} (node {self.host.node_id[:8]})" if self.host else ""
        return f"client shard {self.spec.index}{where}"


class RayShardPool(ShardPoolBase[_Shard]):
    """One Ray actor per :class:`ShardSpec`, spread over ``nodes`` nodes (see the module docstring);
    each shard's :attr:`process_stats` also hold its clock offset and uncertainty."""

    def __init__(self, specs: Sequence[ShardSpec], nodes: int, address: str | None, log_dir: Path) -> None:
        super().__init__()
        self._specs = list(specs)
        self._nodes = nodes
        self._address = address
        self._log_dir = log_dir
        self._connection: RayConnection | None = None
        self._group: Any = None

    @property
    def clocks(self) -> list[ClockAlignment]:
        """Each shard's measured clock alignment, in shard order."""
        return [s.clock for s in self._members if s.clock is not None]

    async def start(self) -> None:
        """Reserve the nodes, create the actors, open their senders and measure their clocks.

        Raises:
            RunError: The cluster has fewer nodes than asked for, or a shard did not get ready in time.
        """
        self._connection = await asyncio.to_thread(RayConnection, self._address)
        util = self._connection.ray.util
        alive = len(self._connection.node_resources())
        if alive < self._nodes:
            raise RunError(f"client_nodes={self._nodes} but the Ray cluster has {alive} nodes; lower client_nodes")
        per_node = [len(self._specs[n :: self._nodes]) for n in range(self._nodes)]  # shard i on node i mod N
        self._group = util.placement_group([{"CPU": max(1, k)} for k in per_node], strategy="STRICT_SPREAD")
        await self._wait(self._group.ready(), "reserving one CPU bundle on each of the nodes")
        actor_class = self._connection.ray.remote(ShardActor)
        for position, spec in enumerate(self._specs):
            strategy = util.scheduling_strategies.PlacementGroupSchedulingStrategy(self._group, position % self._nodes)
            actor = actor_class.options(num_cpus=1, scheduling_strategy=strategy, max_restarts=0).remote(spec)
            self._members.append(_Shard(actor, spec=spec, outstanding={r.request_id: r for r in spec.requests}))
        hosts = await self._wait(asyncio.gather(*(s.actor.open.remote() for s in self._members)), "opening the shards")
        for shard, host in zip(self._members, hosts, strict=True):
            shard.host = host
            shard.clock = await self._measure_clock(shard)
            logger.info(
                "%s: clock offset %+.3f ms ± %.3f ms (best of %d pings)",
                shard.name,
                shard.clock.offset_ns / 1e6,
                shard.clock.uncertainty_ns / 1e6,
                shard.clock.samples,
            )
        self._write_clocks()

    async def _wait(self, awaitable: Any, what: str) -> Any:
        try:
            return await asyncio.wait_for(awaitable, READY_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise RunError(
                f"Ray did not finish {what} within {READY_TIMEOUT_S:.0f} s (`ray status` shows free resources)"
            ) from None
        except Exception as exc:
            if self._connection is not None and isinstance(exc, self._connection.ray.exceptions.RayError):
                raise RunError(f"client shards on Ray failed while {what}: {exc}") from exc
            raise

    async def _measure_clock(self, shard: _Shard) -> ClockAlignment:
        samples = []
        for _ in range(CLOCK_PINGS):
            sent = time.monotonic_ns()
            remote_mono, remote_wall = await shard.actor.clock.remote()
            samples.append(ClockSample(sent, remote_mono, remote_wall, time.monotonic_ns()))
        assert shard.host is not None
        return align_clocks(samples, same_machine=shard.host.machine_id == machine_id())

    def _write_clocks(self) -> None:
        driver = {"host": socket.gethostname(), "wall_minus_monotonic_ns": time.time_ns() - time.monotonic_ns()}
        shards = [
            {"index": s.spec.index, **dataclasses.asdict(s.host), **s.clock.to_dict()}
            for s in self._members
            if s.host is not None and s.clock is not None
        ]
        write_json_atomic(self._log_dir / "clocks.json", {"driver": driver, "shards": shards})

    async def _send_start(self, start_ns: int) -> None:
        """Start every shard at ``start_ns`` (driver clock, converted to the shard's); :meth:`run` puts
        each record back on the driver's timeline."""
        for shard in self._members:
            assert shard.clock is not None
            await shard.actor.start.remote(shard.clock.to_remote_ns(start_ns))

    async def _stop(self, pumps: list[asyncio.Task[None]]) -> None:
        self._stopping_ns = time.monotonic_ns()
        for shard in self._members:
            with contextlib.suppress(Exception):
                shard.actor.stop.remote()
        _, late = await asyncio.wait(pumps, timeout=STOP_TIMEOUT_S)
        for pump in late:
            pump.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    async def _pump(
        self, shard: _Shard, start_ns: int, on_record: Callable[[RequestRecord], None], stats: DispatchStats
    ) -> None:
        assert shard.clock is not None
        offset = shard.clock.offset_ns
        deliver = counting(on_record, stats)

        try:
            while not shard.done:
                batch: ShardBatch = await shard.actor.take.remote(HEARTBEAT_S)
                for record in batch.records:
                    shard.outstanding.pop(record.request_id, None)
                    deliver(shift_record(record, offset))
                shard.counters = batch.counters
                self._sum_counters(stats)
                if batch.done:
                    shard.done, shard.error = True, batch.error
                    if batch.stats is not None:
                        shard.stats = dataclasses.replace(
                            batch.stats, clock_offset_ns=offset, clock_uncertainty_ns=shard.clock.uncertainty_ns
                        )
        except Exception as exc:  # the actor (or its node) died
            shard.error = f"its Ray actor died ({type(exc).__name__})"
            logger.error("%s: %s", shard.name, exc)
        finally:
            shard.counters = Counters(arrived=shard.counters.arrived)
            self._sum_counters(stats)
            if shard.outstanding and (not shard.done or shard.error is not None):
                how = shard.error or "stopped answering"
                for record in self._left_over(shard, start_ns, how, f"{shard.name}: {how}"):
                    deliver(record)

    async def close(self) -> None:
        """Close every shard, end its actor and the placement group, disconnect if we connected."""
        if self._connection is None:
            return
        ray = self._connection.ray
        closing = [s.actor.close.remote() for s in self._members]
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*closing, return_exceptions=True), STOP_TIMEOUT_S)
        for shard in self._members:
            with contextlib.suppress(Exception):
                ray.kill(shard.actor, no_restart=True)
        if self._group is not None:
            with contextlib.suppress(Exception):
                ray.util.remove_placement_group(self._group)
            self._group = None
        self._connection.close()
        self._connection = None
