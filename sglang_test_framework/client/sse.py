"""Server-sent events: one incremental parser for every API (pure; no JSON here)."""

from __future__ import annotations

__all__ = ["SSEParser"]


class SSEParser:
    """Feed raw bytes as they arrive; get back the payload of each complete ``data:`` event.

    Handles events split across reads, several events per read, ``\\r\\n`` line endings, comment lines
    and multi-line data (joined with ``\\n``). ``done`` becomes True after ``data: [DONE]``.
    """

    __slots__ = ("_buf", "_data", "done")

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[bytes] = []
        self.done = False

    def feed(self, chunk: bytes) -> list[bytes]:
        """Payloads of the events completed by ``chunk`` (``[DONE]`` itself is not returned)."""
        buf = self._buf + chunk if self._buf else chunk
        events: list[bytes] = []
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            line = buf[start:nl]
            start = nl + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:  # blank line: end of event
                if self._data:
                    payload = b"\n".join(self._data)
                    self._data = []
                    if payload == b"[DONE]":
                        self.done = True
                    else:
                        events.append(payload)
                continue
            if line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
            # other fields (event:, id:, retry:) and comments (":") are ignored
        self._buf = buf[start:]
        return events

    def flush(self) -> list[bytes]:
        """Payload of a final event not followed by a blank line (stream ended abruptly)."""
        if self._buf.startswith(b"data:"):
            return self.feed(b"\n\n")
        pending = self._data
        self._data = []
        if pending:
            payload = b"\n".join(pending)
            if payload == b"[DONE]":
                self.done = True
                return []
            return [payload]
        return []
