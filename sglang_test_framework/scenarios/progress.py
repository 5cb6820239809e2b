"""Live progress bar with throughput and error count (tqdm, refreshed at most a few times a second)."""

from __future__ import annotations

import sys
import time
from typing import Any

from tqdm import tqdm

from ..records import NOT_SENT, RequestRecord

__all__ = ["ProgressReporter"]


class ProgressReporter:
    """Counts finished requests; shows req/s, output tok/s and errors. Cheap per record."""

    def __init__(self, total: int, label: str, enabled: bool = True, refresh_s: float = 0.5) -> None:
        self.total = total
        self.done = 0
        self.errors = 0
        self.output_tokens = 0
        self._start = time.monotonic()
        self._last = 0.0
        self._refresh_s = refresh_s
        self._bar: Any = None
        if enabled:
            self._bar = tqdm(
                total=total,
                desc=label,
                unit="req",
                file=sys.stderr,
                leave=False,
                dynamic_ncols=True,
                mininterval=refresh_s,
            )

    def update(self, record: RequestRecord) -> None:
        """Account for one finished request (a request a virtual user did not send only moves the bar)."""
        if record.error_type == NOT_SENT:
            if self._bar is not None:
                self._bar.update(1)
            return
        self.done += 1
        self.output_tokens += record.output_tokens
        if not record.success:
            self.errors += 1
        if self._bar is None:
            return
        self._bar.update(1)
        now = time.monotonic()
        if now - self._last >= self._refresh_s:
            self._last = now
            elapsed = max(now - self._start, 1e-9)
            self._bar.set_postfix(
                req_s=f"{self.done / elapsed:.1f}",
                tok_s=f"{self.output_tokens / elapsed:.0f}",
                errors=self.errors,
                refresh=False,
            )

    def close(self) -> None:
        """Remove the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
