"""Closed-loop chains of a generated workload: sessions and virtual users (pure, seeded).

- **Sessions** (multi-turn, ``sharegpt_sessions``, ``gsp_num_turns`` > 1, or any dataset whose samples
  carry ``Sample.session``; a later turn with ``extends_previous`` is built from the answers): the first turn of each
  session arrives on the workload's arrival process (``request_rate``, burstiness, ramp, stages); every
  later turn is sent a think time after the previous turn finished (mean ``gsp_turn_think_time_s`` for
  shared-prefix turns, else ``multi_turn_think_time_s``) and carries the server's answer
  (:mod:`.sessions`). The chain id is the session index.
- **Virtual users** (``virtual_users`` = N): request *i* belongs to user ``i mod N`` (users get requests
  u, u+N, u+2N, … — deterministic, so a multi-process client can split users across processes); each
  user sends its next request when its previous one finished, plus ``virtual_user_think_time_s``.
  User u joins at :func:`user_join_offsets` (all at 0, spread over ``ramp_up_s``, or when the
  virtual-user ``stages`` first reach u + 1 users).
- **Users that leave** (virtual-user ``stages`` that fall somewhere): user u is active in the spans where
  the schedule is ≥ u + 1 (:func:`..config.stages.user_windows`, carried on its first request as
  ``Request.user_windows``). Users get shares of ``num_prompts`` proportional to their active time
  within the schedule (largest remainder), interleaved evenly in sample order (:func:`user_owners`), so
  all users run out at about the same time. A user that leaves finishes its in-flight request and sends
  its next one when it is active again; what it has not sent when its last span ends is recorded as
  not sent (``records.NOT_SENT``).

Later requests of a chain get a nominal ``arrival_offset_s`` (their chain's start plus a microsecond
per position) that only orders them: the dispatcher sends them when their predecessor finished.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from ..config.closed_loop import has_sessions
from ..config.stages import Segment, segments, stages_duration_s, user_windows
from ..config.workload import WorkloadConfig
from ..records import Request
from .datasets import Sample

__all__ = ["chain_offsets", "link_chains", "think_times", "user_join_offsets", "user_owners", "users_leave"]

_ORDER_STEP_S = 1e-6
"""Offset step between a chain's requests: keeps them in order on the nominal schedule."""


def think_times(config: WorkloadConfig, mean_s: float, num: int, rng: np.random.Generator) -> list[float]:
    """``num`` think times around ``mean_s`` drawn by ``config.think_time_distribution`` (seeded)."""
    if mean_s <= 0 or num == 0:
        return [0.0] * num
    if config.think_time_distribution == "exponential":
        return [float(x) for x in rng.exponential(mean_s, size=num)]
    if config.think_time_distribution == "uniform":
        return [float(x) for x in rng.uniform(0.0, 2.0 * mean_s, size=num)]
    return [mean_s] * num


def _stage_join_s(segs: list[Segment], user: int) -> float:
    """When a non-decreasing user schedule first reaches ``user + 1`` users."""
    need = user + 1
    for t0, t1, v0, v1 in segs:
        if v0 >= need:
            return t0
        if v1 >= need:
            return t0 + (need - v0) / (v1 - v0) * (t1 - t0)
    return segs[-1][1] if segs else 0.0


def user_join_offsets(config: WorkloadConfig, users: int) -> list[float]:
    """When each virtual user sends its first request: with ``stages``, user u joins when the schedule
    first reaches u + 1 users; else at ``u × ramp_up_s / users`` (all at 0 without a ramp-up)."""
    if config.stages:
        segs = segments(config.stages)
        return [_stage_join_s(segs, u) for u in range(users)]
    ramp_s = config.ramp_up_s
    return [u * ramp_s / users for u in range(users)]


def chain_offsets(samples: Sequence[Sample], head_offsets: Sequence[float]) -> list[float]:
    """Per-sample offsets: a sample's own ``offset_s`` (traces) when set; else the k-th session head (or
    open-loop sample) gets ``head_offsets[k]`` and a later turn its session head's offset plus its order
    step."""
    out: list[float] = []
    heads = iter(head_offsets)
    session_start: dict[int | None, float] = {}
    for sample in samples:
        if sample.offset_s is not None:
            offset = sample.offset_s
        elif sample.extends_previous:
            offset = session_start.get(sample.session, 0.0) + sample.turn * _ORDER_STEP_S
        else:
            offset = next(heads)
        if not sample.extends_previous:
            session_start[sample.session] = offset
        out.append(offset)
    return out


def _link_sessions(
    requests: list[Request], samples: Sequence[Sample], config: WorkloadConfig, rng: np.random.Generator
) -> None:
    """Each sample's session becomes its chain (turns in sample order); a turn keeps its answer when the
    next turn of its session extends it."""
    gsp = config.dataset_name == "generated-shared-prefix"
    mean_s = config.gsp_turn_think_time_s if gsp else config.multi_turn_think_time_s
    thinks = think_times(config, mean_s, len(requests), rng)
    last_of: dict[int, Request] = {}
    for i, (req, sample) in enumerate(zip(requests, samples, strict=True)):
        if sample.session is None:
            continue
        previous = last_of.get(sample.session)
        req.chain_id = sample.session
        req.extends_previous = sample.extends_previous and previous is not None
        if sample.think_time_s is not None:
            req.think_time_s = sample.think_time_s
        else:
            req.think_time_s = thinks[i] if previous is not None else 0.0
        if previous is not None and req.extends_previous:
            previous.collect_output = True
        if config.routing_key_by == "session":
            req.routing_key = f"session-{sample.session}"
        last_of[sample.session] = req


def _link_users(requests: list[Request], config: WorkloadConfig, users: int, rng: np.random.Generator) -> None:
    joins = user_join_offsets(config, users)
    thinks = think_times(config, config.virtual_user_think_time_s, len(requests), rng)
    for i, req in enumerate(requests):
        user, position = i % users, i // users
        req.chain_id = user
        req.think_time_s = thinks[i] if position else 0.0
        req.arrival_offset_s = joins[user] + position * _ORDER_STEP_S
        if config.routing_key_by == "session":
            req.routing_key = f"user-{user}"


def _active_s(windows: list[tuple[float, float]], end_s: float) -> float:
    return sum(max(0.0, min(b, end_s) - a) for a, b in windows)


def user_owners(active_s: Sequence[float], num: int) -> list[int]:
    """The user of each of ``num`` requests: user u gets a share of ``num`` proportional to
    ``active_s[u]`` (largest remainder, ties to the lower user), its k-th request placed at
    (k + ½) / share of the way through the list (ties to the lower user). Deterministic."""
    weights = np.asarray(active_s, dtype=np.float64)
    exact = num * weights / weights.sum()
    counts = np.floor(exact).astype(np.int64)
    order = sorted(range(len(weights)), key=lambda u: (-(exact[u] - counts[u]), u))
    for u in order[: num - int(counts.sum())]:
        counts[u] += 1
    users = np.repeat(np.arange(len(weights)), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    keys = (np.arange(num) - starts + 0.5) / counts[users]
    return [int(u) for u in users[np.lexsort((users, keys))]]


def _link_leaving_users(requests: list[Request], config: WorkloadConfig, users: int, rng: np.random.Generator) -> None:
    segs = segments(config.stages)
    windows = [user_windows(segs, u) for u in range(users)]
    end_s = stages_duration_s(config.stages)
    owners = user_owners([_active_s(w, end_s) for w in windows], len(requests))
    thinks = think_times(config, config.virtual_user_think_time_s, len(requests), rng)
    positions = [0] * users
    for i, (req, user) in enumerate(zip(requests, owners, strict=True)):
        position = positions[user]
        positions[user] += 1
        req.chain_id = user
        req.think_time_s = thinks[i] if position else 0.0
        req.arrival_offset_s = windows[user][0][0] + position * _ORDER_STEP_S
        req.user_windows = tuple(windows[user]) if position == 0 else None
        if config.routing_key_by == "session":
            req.routing_key = f"user-{user}"


def users_leave(config: WorkloadConfig) -> bool:
    """Whether ``config``'s virtual users follow stages in which some user leaves (the schedule falls)."""
    if config.virtual_users is None or not config.stages:
        return False
    values = [v for seg in segments(config.stages) for v in seg[2:]]
    return any(b < a for a, b in itertools.pairwise(values))


def link_chains(
    requests: list[Request], samples: Sequence[Sample], config: WorkloadConfig, rng: np.random.Generator
) -> None:
    """Make ``requests`` (one per sample, in sample order) closed-loop chains where ``config`` asks for
    sessions or virtual users (module docstring); set group routing keys. Changes them in place."""
    if config.routing_key_by == "group":
        for req in requests:
            if req.group_id is not None:
                req.routing_key = f"group-{req.group_id}"
    if has_sessions(config) or any(s.session is not None for s in samples):  # e.g. a trace's session ids
        _link_sessions(requests, samples, config, rng)
    elif config.virtual_users is not None and users_leave(config):
        _link_leaving_users(requests, config, config.virtual_users, rng)
    elif config.virtual_users is not None:
        _link_users(requests, config, config.virtual_users, rng)
