"""SimServer: the engine's step loop on the real clock, request bookkeeping, faults, ground truth."""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from .config import SimConfig
from .engine import EngineConfig, SimEngine, SimRequest, StepResult
from .metrics import SimMetrics
from .pd import PDRole, make_role
from .profiles import LatencyProfile
from .tokenizer import SimpleTokenizer

__all__ = ["Flow", "SimServer"]

RESYNC_NS = 5_000_000  # if the loop falls this far behind the modelled clock, restart from now


@dataclass(eq=False)
class Flow:
    """A request as the HTTP layer sees it: the engine request plus its wake-up event."""

    req: SimRequest
    event: asyncio.Event = field(default_factory=asyncio.Event)
    first_write_ns: int | None = None  # when the first output token was handed to the socket
    last_write_ns: int = 0  # when output was last handed to the socket (0: never)
    emitted: int = 0
    status: str = "ok"
    stream_interval: int = 1


class SimServer:
    """State shared by the HTTP handlers and the step loop."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.tokenizer = SimpleTokenizer()
        self.profile: LatencyProfile = config.latency_profile()
        total = config.max_total_tokens or self.profile.kv_capacity_tokens(config.resolved_mem_fraction_static)
        self.context_len = config.context_length or self.profile.model.context_len
        mrr = config.max_running_requests or max(2048, min(4096, int(total / self.context_len * 512)))
        hicache = int(total * config.hicache_ratio) if config.enable_hierarchical_cache else 0
        self.engine = SimEngine(
            self.profile,
            EngineConfig(
                max_running_requests=mrr,
                max_total_tokens=total,
                chunked_prefill_size=config.resolved_chunked_prefill_size,
                max_prefill_tokens=config.max_prefill_tokens,
                schedule_policy=config.schedule_policy,
                schedule_conservativeness=config.schedule_conservativeness,
                # a decode worker keeps no prefix cache (SGLang's default without
                # --disaggregation-decode-enable-radix-cache)
                disable_radix_cache=config.disable_radix_cache or config.disaggregation_mode == "decode",
                jitter_cv=config.sim_jitter_cv,
                slowdown=config.sim_slowdown,
                seed=config.random_seed,
                hicache_tokens=hicache,
            ),
            token_fn=self._token,
        )
        self.model_name = config.model_name
        self.worker_id = config.worker_id
        engine_type = "unified" if config.disaggregation_mode == "null" else config.disaggregation_mode
        self.metrics = SimMetrics(self.model_name, engine_type=engine_type)
        self.flows: dict[str, Flow] = {}
        self.ready = False
        self.ready_ns = 0
        self.start_wall = time.time()
        self.arrivals = 0
        self.rng = random.Random(config.random_seed)
        self._wake = asyncio.Event()
        self._truth: IO[str] | None = (
            open(config.sim_ground_truth_log, "a", buffering=1) if config.sim_ground_truth_log else None  # noqa: SIM115
        )
        self._gen_tokens_at = (time.monotonic(), 0)
        self.gen_throughput = 0.0
        self.crash_hook: Callable[[], None] | None = None  # set by a fleet: a crash kills only this worker
        self.pd: PDRole | None = make_role(self)  # PD disaggregation (sim/pd.py); None when not disaggregated

    def _token(self, req: SimRequest, k: int) -> int:
        if k == 0 and req.handoff_token is not None:  # PD decode: the prefill sampled the first token
            return req.handoff_token
        return int((zlib.crc32(req.rid.encode()) + 7919 * k + self.config.random_seed) % self.tokenizer.vocab_size)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Startup delay (fault), then ready."""
        if self.config.sim_startup_delay_s:
            await asyncio.sleep(self.config.sim_startup_delay_s)
        self.ready = True
        self.ready_ns = time.monotonic_ns()
        if self.config.sim_crash_after_s is not None:
            asyncio.get_running_loop().call_later(self.config.sim_crash_after_s, self.crash)
        print("The server is fired up and ready to roll!", flush=True)

    def crash(self) -> None:
        """A crash fault: the process exits at once (code 1); in a fleet (sim/fleet.py) ``crash_hook``
        kills only this worker."""
        if self.crash_hook is not None:
            self.crash_hook()
            return
        os._exit(1)

    def close(self) -> None:
        """Flush and close the ground-truth log."""
        if self._truth is not None:
            self._truth.close()
            self._truth = None

    def healthy(self) -> bool:
        """False before ready and after ``--sim-health-fail-after-s``."""
        if not self.ready:
            return False
        limit = self.config.sim_health_fail_after_s
        return limit is None or (time.monotonic_ns() - self.ready_ns) / 1e9 < limit

    # ------------------------------------------------------------------ requests
    def fault_for_new_request(self) -> tuple[int, str] | str | None:
        """Apply arrival-time faults: (HTTP status, message) to reject it, 'hang', or None."""
        self.arrivals += 1
        n = self.arrivals
        cfg = self.config
        if cfg.sim_crash_after_requests is not None and n >= cfg.sim_crash_after_requests:
            self.crash()
            return "hang"  # only reached in a fleet (sim/fleet.py): this worker's connections are already cut
        if n <= cfg.sim_fail_first_n:
            return cfg.sim_fail_status, f"injected failure (request {n} of the first {cfg.sim_fail_first_n})"
        if cfg.sim_fail_rate and self.rng.random() < cfg.sim_fail_rate:
            return cfg.sim_fail_status, "injected random failure"
        if cfg.sim_hang_after_n is not None and n > cfg.sim_hang_after_n:
            return "hang"
        if (
            cfg.max_queued_requests is not None
            and len(self.engine.waiting) >= cfg.max_queued_requests
            and cfg.sim_queue_overflow != "unbounded"
        ):
            return int(cfg.sim_queue_overflow), "too many queued requests (--max-queued-requests)"
        return None

    def submit(self, req: SimRequest) -> Flow:
        """Queue a request and wake the loop."""
        flow = Flow(req)
        req.notify = lambda _r: flow.event.set()
        self.flows[req.rid] = flow
        self.engine.add_request(req)
        self.metrics.requests += 1
        self.metrics.prompt_tokens += len(req.input_ids)
        self._wake.set()
        return flow

    def abort(self, rid: str | None) -> int:
        """Abort one request or all; wakes their handlers."""
        hit = self.engine.abort(rid)
        for req in hit:
            if req.notify is not None:
                req.notify(req)
        self.metrics.aborted += len(hit)
        return len(hit)

    def finish_flow(self, flow: Flow) -> None:
        """Record a finished request: metrics and a ground-truth line."""
        req = flow.req
        self.flows.pop(req.rid, None)
        self.metrics.generation_tokens += len(req.output_ids)
        self.metrics.cached_tokens += req.cached_tokens
        end = req.finish_ns or time.monotonic_ns()
        if req.first_token_ns is not None and self.config.disaggregation_mode != "prefill":
            self.metrics.ttft.observe((req.first_token_ns - req.arrival_ns) / 1e9)
        if req.admitted_ns is not None:
            self.metrics.queue.observe((req.admitted_ns - req.arrival_ns) / 1e9)
        self.metrics.e2e.observe((end - req.arrival_ns) / 1e9)
        if self._truth is not None:
            self.write_truth(
                {
                    "rid": req.rid,
                    "arrival_ns": req.arrival_ns,
                    "admitted_ns": req.admitted_ns,
                    "prefill_chunks": req.prefill_chunks,
                    "first_token_step_end_ns": req.first_token_ns,
                    "first_token_ns": flow.first_write_ns,
                    "finish_ns": end,
                    "last_write_ns": flow.last_write_ns or None,
                    "prompt_tokens": len(req.input_ids),
                    "completion_tokens": len(req.output_ids),
                    "cached_tokens": req.cached_tokens,
                    "retractions": req.retractions,
                    "status": flow.status,
                    "worker_id": self.worker_id,
                    **(req.pd_truth or {}),
                }
            )

    def write_truth(self, row: dict[str, Any]) -> None:
        """Append one ground-truth row (when ``--sim-ground-truth-log`` is set)."""
        if self._truth is not None:
            self._truth.write(json.dumps(row) + "\n")

    def write_failure(self, req: SimRequest, status: str, error: str) -> None:
        """A ground-truth row for a request that failed before the scheduler ran it (PD rendezvous)."""
        self.write_truth(
            {
                "rid": req.rid,
                "arrival_ns": req.arrival_ns,
                "finish_ns": time.monotonic_ns(),
                "prompt_tokens": len(req.input_ids),
                "completion_tokens": 0,
                "status": status,
                "error": error,
                "worker_id": self.worker_id,
                **(req.pd_truth or {}),
            }
        )

    # ------------------------------------------------------------------ step loop
    async def step_loop(self) -> None:
        """Run steps back to back on absolute deadlines; sleep when idle."""
        engine = self.engine
        next_ns = time.monotonic_ns()
        while True:
            if not engine.has_work():
                self._wake.clear()
                await self._wake.wait()
                next_ns = time.monotonic_ns()
            now = time.monotonic_ns()
            start = next_ns if now - next_ns < RESYNC_NS else now
            step = engine.next_step(start)
            if step is None and start < now:
                # The loop runs late and what is queued arrived after `start`: schedule it from now.
                start = now
                step = engine.next_step(start)
            if step is None:  # queued work that cannot be admitted yet: look again shortly
                await asyncio.sleep(0.001)
                next_ns = time.monotonic_ns()
                continue
            end = start + int(step.duration_s * 1e9)
            delay_ns = end - time.monotonic_ns()
            if delay_ns > 0:
                await asyncio.sleep(delay_ns / 1e9)
                # A timer may fire a few ns early; the step's stamps must not be later than its writes.
                end = min(end, time.monotonic_ns())
            engine.complete_step(step, end)
            self._after_step(step)
            if self.pd is not None:
                self.pd.after_step()
            next_ns = end

    def _after_step(self, step: StepResult) -> None:
        if step.kind == "decode":
            gap = step.duration_s
            self.metrics.itl.observe(gap, len(step.batch))
        now = time.monotonic()
        t0, n0 = self._gen_tokens_at
        if now - t0 >= 1.0:
            produced = self.engine.counters["decode_tokens"] - n0
            self.gen_throughput = produced / (now - t0)
            self._gen_tokens_at = (now, self.engine.counters["decode_tokens"])

    # ------------------------------------------------------------------ views
    def gauges(self) -> dict[str, float]:
        """Scheduler gauges, live."""
        e = self.engine
        total = e.config.max_total_tokens
        return {
            "num_running_reqs": len(e.running),
            "num_queue_reqs": len(e.waiting) + (1 if e.chunked else 0),
            "num_used_tokens": e.used_tokens,
            "token_usage": round(e.used_tokens / total, 6) if total else 0.0,
            "max_total_num_tokens": total,
            "gen_throughput": round(self.gen_throughput, 3),
            "cache_hit_rate": round(e.last_cache_hit_rate, 6),
            "num_retracted_reqs": sum(1 for r in e.waiting if r.retractions),
            "utilization": 1.0 if e.running else 0.0,
            "num_grammar_queue_reqs": 0,
            "max_running_requests": e.config.max_running_requests,
        }

    def server_info(self) -> dict[str, Any]:
        """``/server_info``: resolved server args as flat keys (API key as ``***``) plus scheduler info."""
        e = self.engine
        info = self.config.public_args()
        info.update(
            max_running_requests=e.config.max_running_requests,
            chunked_prefill_size=e.config.chunked_prefill_size,
            mem_fraction_static=self.config.resolved_mem_fraction_static,
            disaggregation_mode=self.config.disaggregation_mode,
            max_total_num_tokens=e.config.max_total_tokens,
            max_req_input_len=self.context_len - 1,
            context_length=self.context_len,
            version="0.5.23-sim",
            served_model_name=self.model_name,
            sim_profile=self.profile.name,
            sim_worker_id=self.worker_id,
            startup_time=self.start_wall,
            kv_events=None,
            internal_states=[
                {
                    "last_gen_throughput": self.gen_throughput,
                    "memory_usage": {"token_usage": self.gauges()["token_usage"]},
                    "effective_max_running_requests_per_dp": e.config.max_running_requests,
                }
            ],
        )
        info["launch_command"] = "python -m sglang_test_framework.sim"
        return info
