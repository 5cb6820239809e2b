"""Per-request data shared by every layer: what to send (:class:`Request`) and what happened
(:class:`RequestRecord`).

All timestamps are integer nanoseconds of ``time.monotonic_ns()`` (CLOCK_MONOTONIC, shared by every
process on the machine, so client records and the simulator's ground-truth log are directly comparable).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ChatMessage", "ClientProcessStats", "Request", "RequestRecord"]

ChatMessage = dict[str, str]


@dataclass(slots=True)
class Request:
    """One request of a workload, produced by the RequestGenerator (pure data, no I/O).

    Attributes:
        request_id: Unique id; sent as ``rid`` (``/generate``) and ``X-Request-Id`` header.
        prompt: Prompt text (for chat APIs the last user message when ``messages`` is empty).
        prompt_len: Prompt length in tokens of the workload's tokenizer.
        output_len: Requested output tokens (``max_new_tokens`` / ``max_tokens``).
        arrival_offset_s: Scheduled arrival, seconds after the start of the run.
        messages: Full chat history for multi-turn chat workloads (else empty).
        prompt_token_ids: Token ids when the workload sends ``input_ids`` instead of text.
        group_id: Shared-prefix group or conversation id, for routing analysis.
        turn: Turn index within a multi-turn conversation.
        chain_id: Requests with the same chain id are sent one after another, each only after the
            previous one finished (closed loop: a conversation's turns, a virtual user's requests), in
            ``arrival_offset_s`` order; the first at its arrival offset. None: open loop. A chain is never
            split across client processes.
        think_time_s: For a chained request: wait this long after the previous request of its chain
            finished before sending it.
        routing_key: Sent as the ``X-SMG-Routing-Key`` header when set (sticky routing by session/user).
    """

    request_id: str
    prompt: str
    prompt_len: int
    output_len: int
    arrival_offset_s: float = 0.0
    messages: list[ChatMessage] = field(default_factory=list)
    prompt_token_ids: list[int] | None = None
    group_id: int | None = None
    turn: int = 0
    chain_id: int | None = None
    think_time_s: float = 0.0
    routing_key: str | None = None


@dataclass(slots=True)
class RequestRecord:
    """Everything measured for one request. Errors are stored here, never raised by the sender.

    Timestamps (``*_ns``) are ``time.monotonic_ns()`` values:
        scheduled_ns: start of run + the request's arrival offset (the intended arrival).
        arrival_ns: when the scheduled arrival really happened (the dispatcher's timer fired).
        send_ns: just before the HTTP request was written (after any client concurrency limit).
        first_token_ns: when the bytes of the first chunk carrying output tokens were read.
        finish_ns: when the last byte of the response (``[DONE]`` or body end) was read.
    ``chunk_ns[i]`` is when chunk i (with new tokens) was read and ``chunk_tokens[i]`` how many new
    output tokens it carried; ``chunk_ns[0] == first_token_ns``. ``coalesced_chunks`` counts the
    chunks (with new tokens) that arrived in one socket read together with another such chunk: they
    share one read time, so the gaps between them are 0.
    """

    request_id: str
    api_type: str = "sglang"
    url: str = ""
    prompt_len: int = 0
    expected_output_len: int = 0
    scheduled_ns: int = 0
    arrival_ns: int = 0
    send_ns: int = 0
    first_token_ns: int | None = None
    finish_ns: int | None = None
    chunk_ns: list[int] = field(default_factory=list)
    chunk_tokens: list[int] = field(default_factory=list)
    coalesced_chunks: int = 0
    output_tokens: int = 0
    cached_tokens: int | None = None
    finish_reason: str | None = None
    success: bool = False
    error: str | None = None
    error_type: str | None = None
    http_status: int | None = None
    worker_id: str | None = None
    server_e2e_latency_s: float | None = None
    server_queue_time_s: float | None = None
    num_retractions: int | None = None
    group_id: int | None = None
    turn: int = 0
    output_text: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (used by the JSONL writer and exports); the chunk lists are copied."""
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for name in ("chunk_ns", "chunk_tokens"):
            if isinstance(out[name], list):
                out[name] = list(out[name])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestRecord:
        """Inverse of :meth:`to_dict`; unknown keys are ignored so older files still load."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(slots=True)
class ClientProcessStats:
    """What one client process (the driver itself, a worker process or a remote shard) spent on a load.

    Attributes:
        index: Shard index (0 for a one-process client).
        pid: Its process id.
        host: Host name (a remote shard's node).
        cpu_s: CPU seconds (user + system) the process used while the load ran.
        wall_s: Wall seconds of the same interval; ``cpu_s / wall_s`` is its utilisation of one core.
        requests: Requests it sent.
    """

    index: int
    pid: int
    host: str
    cpu_s: float
    wall_s: float
    requests: int

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}
