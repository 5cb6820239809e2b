"""Checks of the closed-loop fields of a workload: sessions (multi-turn, ShareGPT sessions, shared-prefix
turns) and virtual users (docs/workloads.md, "Closed-loop sessions" and "Virtual users").

Errors are one line naming the field and the fix (raised as ``ValueError`` inside the config's
validator, which turns them into ``ConfigError``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .workload import WorkloadConfig

__all__ = ["RoutingKeyBy", "ThinkTimeDistribution", "check_closed_loop", "has_sessions", "session_turns"]

ThinkTimeDistribution = Literal["fixed", "exponential", "uniform"]
"""How a session's think time is drawn around its mean: ``fixed`` (always the mean), ``exponential``
(mean as given) or ``uniform`` (in ``[0, 2 × mean]``); seeded."""

RoutingKeyBy = Literal["none", "session", "group"]
"""What ``X-SMG-Routing-Key`` is sent for: nothing, each session / virtual user, or each shared-prefix group."""


def session_turns(cfg: WorkloadConfig) -> int | None:
    """Turns per session when the dataset runs closed-loop sessions of a fixed length, else None."""
    if cfg.dataset_name == "multi-turn":
        return cfg.multi_turn_turns
    if cfg.dataset_name == "generated-shared-prefix" and cfg.gsp_num_turns > 1:
        return cfg.gsp_num_turns
    return None


def has_sessions(cfg: WorkloadConfig) -> bool:
    """Whether the workload's requests are closed-loop sessions (then ``request_rate`` starts sessions)."""
    if cfg.dataset_name == "trace":  # a trace's session_id rows (config/trace_fields.py)
        return cfg.trace_sessions == "closed"
    return session_turns(cfg) is not None or (cfg.dataset_name == "sharegpt" and cfg.sharegpt_sessions)


def _check_virtual_users(cfg: WorkloadConfig, explicit: set[str]) -> None:
    users = cfg.virtual_users
    if users is None:
        if cfg.virtual_user_think_time_s > 0:
            raise ValueError("virtual_user_think_time_s: needs virtual_users, e.g. --virtual-users 16")
        return
    if has_sessions(cfg):
        raise ValueError(
            f"virtual_users: {cfg.dataset_name} sessions already run closed loop; omit virtual_users "
            "(sessions start at request_rate) or use a single-turn dataset"
        )
    if "request_rate" in explicit and math.isfinite(cfg.request_rate):
        raise ValueError(
            "virtual_users: each user sends when its previous request finished, so request_rate does not apply; "
            "omit request_rate (or omit virtual_users for an open-loop rate)"
        )
    if cfg.duration_s is not None:
        raise ValueError("duration_s: a virtual-user load is sized by num_prompts; omit duration_s")
    if users > cfg.num_prompts:
        raise ValueError(
            f"virtual_users: {users} users for {cfg.num_prompts} requests leaves users idle; "
            f"use virtual_users ≤ num_prompts"
        )


def _check_think_times(cfg: WorkloadConfig, explicit: set[str]) -> None:
    gsp_turns = cfg.dataset_name == "generated-shared-prefix" and cfg.gsp_num_turns > 1
    if cfg.gsp_turn_think_time_s > 0 and not gsp_turns:
        raise ValueError(
            "gsp_turn_think_time_s: only for shared-prefix conversations (dataset_name='generated-shared-prefix' "
            "with gsp_num_turns > 1); omit it"
        )
    default_s = type(cfg).model_fields["multi_turn_think_time_s"].default
    if gsp_turns and "multi_turn_think_time_s" in explicit and cfg.multi_turn_think_time_s != default_s:
        raise ValueError(
            "multi_turn_think_time_s: shared-prefix turns wait gsp_turn_think_time_s (default 0, as SGLang); "
            "set gsp_turn_think_time_s instead"
        )


def _check_sessions(cfg: WorkloadConfig) -> None:
    if cfg.sharegpt_sessions and cfg.dataset_name != "sharegpt":
        raise ValueError("sharegpt_sessions: only for dataset_name='sharegpt'; omit it")
    if cfg.gsp_num_turns > 1:
        if cfg.dataset_name != "generated-shared-prefix":
            raise ValueError("gsp_num_turns: only for dataset_name='generated-shared-prefix'; omit it")
        if cfg.gsp_group_distribution == "zipf" and cfg.num_prompts % cfg.gsp_num_turns:
            raise ValueError(
                f"num_prompts: {cfg.num_prompts} requests are not whole conversations of gsp_num_turns="
                f"{cfg.gsp_num_turns}; use a multiple of {cfg.gsp_num_turns}"
            )
    if cfg.routing_key_by == "group" and cfg.dataset_name not in ("generated-shared-prefix", "multi-turn"):
        raise ValueError(
            "routing_key_by: 'group' needs a dataset with groups (generated-shared-prefix, multi-turn); "
            "use 'session' or 'none'"
        )
    if cfg.routing_key_by == "session" and not (has_sessions(cfg) or cfg.virtual_users):
        raise ValueError(
            "routing_key_by: 'session' needs sessions (multi-turn, sharegpt_sessions, gsp_num_turns > 1) or "
            "virtual_users; use 'group' or 'none'"
        )
    if cfg.duration_s is not None and (cfg.sharegpt_sessions or cfg.gsp_num_turns > 1):
        raise ValueError("duration_s: a session load is sized by its conversations; omit duration_s")


def check_closed_loop(cfg: WorkloadConfig, explicit: set[str]) -> None:
    """Validate the session and virtual-user fields of ``cfg`` (``explicit``: the fields the user set).

    Raises:
        ValueError: One line naming the field and the fix.
    """
    _check_sessions(cfg)
    _check_think_times(cfg, explicit)
    _check_virtual_users(cfg, explicit)
