"""The simulated scheduler: ONE step loop of prefill (extend) or decode batches, SGLang's rules.

Each step is a prefill batch when a waiting request can be admitted (chunked to
``chunked_prefill_size`` tokens, decodes paused), else a decode batch of every running request.
Admission needs ``running < max_running_requests`` and free KV tokens (free + evictable radix cache ≥
new tokens + reserved output tokens × new_token_ratio), and the request must have arrived by the step's
start. When decode runs out of KV, the newest requests are retracted to the queue. Time comes from the
latency profile; the caller drives the loop with ``next_step(start_ns)`` then ``complete_step(step,
end_ns)``: the server's step loop on the real clock, unit tests on a virtual one.
"""

from __future__ import annotations

import math
import random
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .profiles import LatencyProfile
from .radix import RadixCache, RadixNode

__all__ = ["EngineConfig", "SimEngine", "SimRequest", "StepResult"]


@dataclass(frozen=True)
class EngineConfig:
    """Scheduler settings (resolved server args)."""

    max_running_requests: int
    max_total_tokens: int
    chunked_prefill_size: int = 8192
    max_prefill_tokens: int = 16384
    schedule_policy: str = "fcfs"
    schedule_conservativeness: float = 1.0
    disable_radix_cache: bool = False
    jitter_cv: float = 0.0
    slowdown: float = 1.0
    seed: int = 0
    hicache_tokens: int = 0  # host-memory tier (HiCache); 0 = off
    decay_steps: int = 600


@dataclass(eq=False)
class SimRequest:
    """One request inside the engine."""

    rid: str
    input_ids: list[int]
    max_new_tokens: int
    arrival_ns: int = 0  # admitted only by a step that starts at or after this
    output_ids: list[int] = field(default_factory=list)
    cached_tokens: int = 0
    prefilled: int = 0  # tokens of (input + output) whose KV exists
    admitted_ns: int | None = None  # start of the step that first admitted it (a retraction keeps it)
    first_token_ns: int | None = None  # end of the step that produced the first output token
    finish_ns: int | None = None  # end of the step that finished it
    retractions: int = 0
    finished: bool = False
    aborted: bool = False
    finish_reason: dict[str, Any] | None = None
    node: RadixNode | None = None
    private_tokens: int = 0  # KV tokens owned by this request and not in the radix tree
    prefill_chunks: list[dict[str, int]] = field(default_factory=list)
    stop_check: Callable[[SimRequest], dict[str, Any] | None] | None = None
    notify: Callable[[SimRequest], None] | None = None
    target: int = 0  # KV tokens the current admission must reach (len(seq) at admission)
    kv_ready_ns: int | None = None  # PD decode: when the prompt's KV arrived (then it joins without prefill)
    handoff_token: int | None = None  # PD decode: the first output token, sampled by the prefill worker
    pd_truth: dict[str, Any] | None = None  # PD: role, room and stage stamps for the ground-truth row

    @property
    def seq(self) -> list[int]:
        """Prompt plus output so far (what a re-admitted request must have in KV)."""
        return self.input_ids + self.output_ids if self.output_ids else self.input_ids


@dataclass
class StepResult:
    """What one step did and how long it took (seconds of simulated GPU time)."""

    kind: str  # "prefill" | "decode"
    duration_s: float
    batch: list[SimRequest]
    chunks: list[int] = field(default_factory=list)  # prefill: new tokens of each request in ``batch``
    new_tokens: int = 0
    cached_tokens: int = 0  # prefill: cached prefix tokens of the newly admitted requests


class SimEngine:
    """Scheduler state + step construction. Not thread-safe; one event loop drives it."""

    def __init__(
        self, profile: LatencyProfile, config: EngineConfig, token_fn: Callable[[SimRequest, int], int] | None = None
    ) -> None:
        self.profile = profile
        self.config = config
        self.cache = RadixCache(disabled=config.disable_radix_cache)
        self.waiting: deque[SimRequest] = deque()
        self.running: list[SimRequest] = []
        self.chunked: SimRequest | None = None
        self.prebuilt: deque[SimRequest] = deque()  # PD decode: KV transferred, joins the next step
        self.preallocated: set[SimRequest] = set()  # PD decode: holding preallocated KV, not running yet
        self.rng = random.Random(config.seed)
        self.token_fn = token_fn or (lambda r, k: (zlib.crc32(r.rid.encode()) + 7919 * k) % 32000)
        self.init_ratio = min(0.7 * config.schedule_conservativeness, 1.0)
        self.min_ratio = min(0.1 * config.schedule_conservativeness, 1.0)
        self.new_token_ratio = self.init_ratio
        self.private_total = 0
        self.host_cached: dict[tuple[int, ...], int] = {}
        self.counters = {
            "num_retracted_requests_total": 0,
            "retracted_input_tokens": 0,
            "prefill_compute_tokens": 0,
            "prefill_cache_tokens": 0,
            "decode_tokens": 0,
            "load_back_tokens": 0,
            "evicted_tokens": 0,
        }
        self.last_cache_hit_rate = 0.0
        self.max_running_seen = 0

    # ---------------------------------------------------------------- accounting
    @property
    def used_tokens(self) -> int:
        """KV tokens in use: radix tree + tokens private to running requests."""
        return self.cache.total_size + self.private_total

    @property
    def free_tokens(self) -> int:
        """Unused KV tokens (excluding evictable cache)."""
        return self.config.max_total_tokens - self.used_tokens

    def _alloc(self, req: SimRequest, n: int) -> bool:
        short = n - self.free_tokens
        if short > 0:
            self.counters["evicted_tokens"] += self.cache.evict(short)
        if n > self.free_tokens:
            return False
        req.private_tokens += n
        self.private_total += n
        return True

    def _free_private(self, req: SimRequest) -> None:
        self.private_total -= req.private_tokens
        req.private_tokens = 0

    def _reserved(self) -> float:
        return sum(max(r.max_new_tokens - len(r.output_ids), 0) for r in self.running) * self.new_token_ratio

    # ---------------------------------------------------------------- requests
    def add_request(self, req: SimRequest) -> None:
        """Queue a request (FCFS order; ``lpm`` reorders at scheduling time). A PD decode request whose
        KV has arrived (``kv_ready_ns`` set, KV preallocated) joins the running batch without prefill."""
        if req.kv_ready_ns is not None:
            self.prebuilt.append(req)
        else:
            self.waiting.append(req)

    # ---------------------------------------------------------------- PD decode
    def try_prealloc(self, req: SimRequest) -> bool:
        """PD decode: reserve the KV of ``req``'s prompt (SGLang's prealloc queue); False if the running
        limit or the KV pool (free + evictable − reserved output) cannot take it now."""
        if len(self.running) + len(self.preallocated) >= self.config.max_running_requests:
            return False
        need = len(req.input_ids)
        waiting_out = sum(r.max_new_tokens for r in self.preallocated) * self.new_token_ratio
        available = self.free_tokens + self.cache.evictable_size - self._reserved() - waiting_out
        busy = bool(self.running or self.preallocated)
        if busy and available < need + req.max_new_tokens * self.new_token_ratio:
            return False
        if not self._alloc(req, need):
            return False
        self.preallocated.add(req)
        return True

    def release_prealloc(self, req: SimRequest) -> None:
        """PD decode: give back the preallocated KV of a request that never joined (transfer failed)."""
        if req in self.preallocated:
            self.preallocated.discard(req)
            self._free_private(req)

    def _join_prebuilt(self, now_ns: int) -> None:
        while self.prebuilt and (self.prebuilt[0].kv_ready_ns or 0) <= now_ns:
            req = self.prebuilt.popleft()
            self.preallocated.discard(req)
            req.prefilled = req.target = len(req.input_ids)
            req.admitted_ns = now_ns
            self.running.append(req)

    def abort(self, rid: str | None = None) -> list[SimRequest]:
        """Abort one request (or all if ``rid`` is None); returns the aborted ones."""
        hit = [r for r in [*self.waiting, *self.running, *self.prebuilt] if rid is None or r.rid == rid]
        for req in hit:
            req.aborted = True
            req.finish_reason = {"type": "abort", "message": "Abort request"}
            if req in self.waiting:
                self.waiting.remove(req)
            if req in self.prebuilt:
                self.prebuilt.remove(req)
                self.release_prealloc(req)
        return hit

    def has_work(self) -> bool:
        """True while anything is queued or running."""
        return bool(self.waiting or self.running or self.chunked or self.prebuilt)

    def flush_cache(self) -> bool:
        """Empty the prefix cache; refused (False) while requests are queued or running, like SGLang."""
        if self.has_work():
            return False
        self.cache.reset()
        self.host_cached.clear()
        return True

    # ---------------------------------------------------------------- scheduling
    def _order_waiting(self, now_ns: int) -> None:
        """``lpm``: arrived requests by longest cached prefix first (later arrivals stay behind them)."""
        if self.config.schedule_policy == "lpm" and len(self.waiting) > 1:
            arrived = [r for r in self.waiting if r.arrival_ns <= now_ns]
            arrived.sort(key=lambda r: -self.cache.match_prefix(r.seq)[0])
            self.waiting = deque(arrived + [r for r in self.waiting if r.arrival_ns > now_ns])

    def _admit(self, req: SimRequest, budget: int) -> int:
        """Try to admit ``req`` into a prefill batch with ``budget`` tokens left; returns tokens used."""
        seq = req.seq
        matched, node = self.cache.match_prefix(seq)
        matched = min(matched, len(seq) - 1)  # the last token is always computed, like SGLang
        need = len(seq) - matched
        rem_out = max(req.max_new_tokens - len(req.output_ids), 0)
        available = self.free_tokens + self.cache.evictable_size - self._reserved()
        chunk = min(need, budget)
        if available < chunk + rem_out * self.new_token_ratio and self.running:
            return 0
        if not self._alloc(req, chunk):
            return 0
        req.node = node
        self.cache.lock(node)
        if not req.retractions:
            req.cached_tokens = matched
        req.prefilled = matched
        req.target = len(seq)
        return chunk

    def _build_prefill(self, now_ns: int) -> StepResult | None:
        cfg = self.config
        budget = min(cfg.chunked_prefill_size if cfg.chunked_prefill_size > 0 else math.inf, cfg.max_prefill_tokens)
        batch: list[SimRequest] = []
        new: list[int] = []
        cached: list[int] = []
        if self.chunked is not None:
            req = self.chunked
            take = int(min(req.target - req.prefilled, budget))
            if not self._alloc(req, take):
                return None
            batch.append(req)
            new.append(take)
            cached.append(req.prefilled)
            budget -= take
        self._order_waiting(now_ns)
        while self.waiting and budget > 0 and len(self.running) + len(batch) < cfg.max_running_requests:
            req = self.waiting[0]
            if req.arrival_ns > now_ns:  # arrived after this step began (FCFS order is arrival order)
                break
            took = self._admit(req, int(budget))
            if took == 0:
                break
            self.waiting.popleft()
            if req.admitted_ns is None:
                req.admitted_ns = now_ns
            batch.append(req)
            new.append(took)
            cached.append(req.prefilled)
            budget -= took
        if not batch:
            return None
        load_back = self._hicache_load_back(batch, new)
        duration = self.profile.prefill_time_s(new, cached)
        fresh = [c for r, c in zip(batch, cached, strict=True) if r is not self.chunked]
        return StepResult(
            "prefill",
            (duration + load_back) * self._jitter(),
            batch,
            chunks=new,
            new_tokens=sum(new),
            cached_tokens=sum(fresh),
        )

    def _hicache_load_back(self, batch: list[SimRequest], new: list[int]) -> float:
        """HiCache: prompt prefixes evicted from the GPU but kept in host memory are loaded back
        (host bandwidth) instead of recomputed; their tokens then cost no prefill FLOPs."""
        if not self.config.hicache_tokens:
            return 0.0
        tokens = 0
        for i, req in enumerate(batch):
            host = self.host_cached.get(tuple(req.input_ids[:64]), 0)
            extra = max(0, min(host, req.target - 1, req.prefilled + new[i]) - req.prefilled)
            if extra and req.prefilled < host:
                new[i] -= extra
                req.prefilled += extra
                req.cached_tokens += extra
                tokens += extra
        self.counters["load_back_tokens"] += tokens
        return self.profile.load_back_time_s(tokens)

    def _jitter(self) -> float:
        cv = self.config.jitter_cv
        factor = self.config.slowdown
        if cv > 0:
            sigma = math.sqrt(math.log(1 + cv * cv))
            factor *= self.rng.lognormvariate(-sigma * sigma / 2, sigma)
        return factor

    def _build_decode(self) -> StepResult | None:
        if not self.running:
            return None
        while self.running and self.free_tokens + self.cache.evictable_size < len(self.running):
            self._retract(self.running.pop())
        if not self.running:
            return None
        for req in self.running:
            self._alloc(req, 1)
        sum_ctx = sum(len(r.input_ids) + len(r.output_ids) for r in self.running)
        duration = self.profile.decode_time_s(len(self.running), sum_ctx) * self._jitter()
        self.new_token_ratio = max(
            self.min_ratio, self.new_token_ratio - (self.init_ratio - self.min_ratio) / self.config.decay_steps
        )
        return StepResult("decode", duration, list(self.running))

    def _retract(self, req: SimRequest) -> None:
        if req.node is not None:
            self.cache.unlock(req.node)
            req.node = None
        self._free_private(req)
        req.retractions += 1
        req.prefilled = 0
        self.counters["num_retracted_requests_total"] += 1
        self.counters["retracted_input_tokens"] += len(req.input_ids)
        self.waiting.appendleft(req)
        self.new_token_ratio = self.init_ratio

    def next_step(self, now_ns: int) -> StepResult | None:
        """Build the batch of a step starting at ``now_ns`` (prefill first; only requests that arrived by
        ``now_ns`` are admitted, at ``now_ns``), or None if there is nothing to do. PD decode requests
        whose KV arrived by ``now_ns`` join the running batch first."""
        if self.prebuilt:
            self._join_prebuilt(now_ns)
        step = self._build_prefill(now_ns) if (self.waiting or self.chunked) else None
        if step is None:
            step = self._build_decode()
        return step

    # ---------------------------------------------------------------- completion
    def complete_step(self, step: StepResult, end_ns: int) -> None:
        """Apply a step's effects at its end time: prefill progress / first tokens, or one token each."""
        if step.kind == "prefill":
            self._complete_prefill(step, end_ns)
        else:
            for req in step.batch:
                if not req.aborted:
                    self._emit_token(req, end_ns)
                    self.counters["decode_tokens"] += 1
        for req in list(self.running):
            if req.aborted or req.finished:
                self._finish(req, end_ns)
        self.max_running_seen = max(self.max_running_seen, len(self.running))

    def _complete_prefill(self, step: StepResult, end_ns: int) -> None:
        total = step.new_tokens + step.cached_tokens
        self.last_cache_hit_rate = step.cached_tokens / total if total else 0.0
        self.counters["prefill_compute_tokens"] += step.new_tokens
        self.counters["prefill_cache_tokens"] += step.cached_tokens
        for req, chunk in zip(step.batch, step.chunks, strict=True):
            req.prefill_chunks.append({"end_ns": end_ns, "tokens": chunk, "cached_tokens": req.prefilled})
            req.prefilled += chunk
            if req.prefilled >= req.target:
                self.chunked = None if self.chunked is req else self.chunked
                self._promote(req, end_ns)
            else:
                self.chunked = req

    def _promote(self, req: SimRequest, end_ns: int) -> None:
        """Prefill finished: cache the prompt, start decoding (the prefill emits the first token)."""
        if not self.cache.disabled:  # without the radix cache the KV stays private to the request
            if req.node is not None:
                self.cache.unlock(req.node)
            self.cache.insert(req.seq)  # its computed KV moves into the tree (duplicates are freed)
            _, node = self.cache.match_prefix(req.seq)
            self.cache.lock(node)
            req.node = node
            self._free_private(req)
        if self.config.hicache_tokens:
            self.host_cached[tuple(req.input_ids[:64])] = len(req.input_ids)
        if req not in self.running:
            self.running.append(req)
        if req.aborted:
            return
        self._emit_token(req, end_ns)

    def _emit_token(self, req: SimRequest, end_ns: int) -> None:
        req.output_ids.append(self.token_fn(req, len(req.output_ids)))
        if req.first_token_ns is None:
            req.first_token_ns = end_ns
        reason = req.stop_check(req) if req.stop_check else None
        if reason is None and len(req.output_ids) >= req.max_new_tokens:
            reason = {"type": "length", "length": len(req.output_ids)}
        if reason is not None:
            req.finished = True
            req.finish_reason = reason
        if req.notify is not None:
            req.notify(req)

    def _finish(self, req: SimRequest, end_ns: int) -> None:
        self.running.remove(req)
        if req.node is not None:
            self.cache.unlock(req.node)
            req.node = None
        self._free_private(req)
        self.cache.insert(req.seq)  # finished sequences stay cached (prompt + output)
        req.finish_ns = end_ns
        if req.notify is not None:
            req.notify(req)
