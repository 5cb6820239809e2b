"""Per-request data shared by every layer: what to send (:class:`Request`) and what happened
(:class:`RequestRecord`).

All timestamps are integer nanoseconds of ``time.monotonic_ns()`` (CLOCK_MONOTONIC, shared by every
process on the machine, so client records and the simulator's ground-truth log are directly comparable).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["NOT_SENT", "ChatMessage", "ClientProcessStats", "PromptSource", "Request", "RequestRecord"]

ChatMessage = dict[str, str]

NOT_SENT = "not_sent"
"""``error_type`` of a request a virtual user never sent because it left (``Request.user_windows``): no
timestamps; every metric, the success rate and the progress count leave it out and the summary counts it
as ``not_sent`` (docs/workloads.md, "Users that leave")."""


class PromptSource(Protocol):
    """Builds a prompt's text when it is sent (picklable), so a workload of very long prompts (a
    replayed trace) does not hold every prompt's text in memory at once."""

    def text(self) -> str:
        """The prompt text."""
        ...


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
        workload: Name of the mixed-workload component this request belongs to (None outside a mix).
        extends_previous: A closed-loop session turn: ``prompt`` / ``messages`` / ``prompt_token_ids`` hold
            only this turn's new user part; at send time the dispatcher prefixes the previous turn of the
            chain and the answer the server gave to it (:mod:`.load.sessions`).
        collect_output: The sender keeps the answer on the record (``output_text``, and ``output_ids``
            from ``/generate``): the next turn of a session is built from it.
        prompt_source: When set, ``prompt`` is empty and the text is built at send time
            (:meth:`prompt_text`; trace replay, load/trace_replay.py).
        user_windows: On the first request of a virtual user's chain whose user leaves: the spans
            ``(start_s, end_s)`` after the run start in which the user is active (``end_s`` may be inf).
            A request of the chain that becomes eligible between spans waits for the next span; one
            that becomes eligible after the last is not sent (``error_type=NOT_SENT``). None: always active.
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
    workload: str | None = None
    extends_previous: bool = False
    collect_output: bool = False
    prompt_source: PromptSource | None = None
    user_windows: tuple[tuple[float, float], ...] | None = None

    def prompt_text(self) -> str:
        """``prompt``, or the text its ``prompt_source`` builds."""
        return self.prompt if self.prompt_source is None else self.prompt_source.text()


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
    ``worker_id`` is the worker's own ``X-Worker-Id`` (our sim and Python router); ``routed_worker`` is
    the URL SMG says it routed to (``x-smg-routed-worker-id``); RoutingTest cross-checks the two.
    ``chain_id`` is the request's closed-loop chain (session or virtual user); ``output_text`` /
    ``output_ids`` hold the answer when the request had ``collect_output`` (a session's next turn is
    built from it); for a chained request ``scheduled_ns`` is when it became eligible (the previous
    request's ``finish_ns`` + think time).
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
    workload: str | None = None
    output_ids: list[int] | None = None
    chain_id: int | None = None
    routed_worker: str | None = None

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
        clock_offset_ns: Its CLOCK_MONOTONIC minus the driver's (its records were shifted by minus this
            onto the driver's timeline); 0 on the driver's machine, measured for a shard on another host.
        clock_uncertainty_ns: The offset is exact within ± this (half the round trip of the best of
            several pings; 0 on the driver's machine).
    """

    index: int
    pid: int
    host: str
    cpu_s: float
    wall_s: float
    requests: int
    clock_offset_ns: int = 0
    clock_uncertainty_ns: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}
