"""Server-sent events: one incremental parser for every API (pure; no JSON here)."""

from __future__ import annotations

__all__ = ["SSEParser"]


class SSEParser:
    """Feed raw bytes as they arrive; get back the payload of each complete ``data:`` event.

    Handles events split across reads, several events per read, ``\\r\\n`` line endings, comment lines
    and multi-line data (joined with ``\\n``). ``done`` becomes True after ``data: [DONE]``.
    """

    __slots__ = ("_data", "_partial", "done")

    def __init__(self) -> None:
        self._partial: list[bytes] = []  # reads of a line not yet ended, joined once when it ends
        self._data: list[bytes] = []
        self.done = False

    def feed(self, chunk: bytes) -> list[bytes]:
        """Payloads of the events completed by ``chunk`` (``[DONE]`` itself is not returned)."""
        nl = chunk.find(b"\n")
        if nl < 0:
            # A line longer than one read (big cumulative /generate events): collecting the pieces keeps
            # this linear, where re-joining the buffer on every read would be quadratic in the line length.
            if chunk:
                self._partial.append(chunk)
            return []
        if self._partial:
            self._partial.append(chunk)
            buf = b"".join(self._partial)
            self._partial = []
            nl = buf.find(b"\n")
        else:
            buf = chunk
        events: list[bytes] = []
        data = self._data
        start = 0
        while nl >= 0:
            line = buf[start:nl]
            start = nl + 1
            nl = buf.find(b"\n", start)
            if not line or line == b"\r":  # blank line: end of event
                if data:
                    payload = b"\n".join(data) if len(data) > 1 else data[0]
                    data.clear()
                    if payload == b"[DONE]":
                        self.done = True
                    else:
                        events.append(payload)
                continue
            if line[-1] == 13:  # \r
                line = line[:-1]
            if line.startswith(b"data:"):
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            # other fields (event:, id:, retry:) and comments (":") are ignored
        if start < len(buf):
            self._partial.append(buf[start:])
        return events

    def flush(self) -> list[bytes]:
        """Payload of a final event not followed by a blank line (stream ended abruptly)."""
        return self.feed(b"\n\n") if self._partial or self._data else []
