"""Regenerate ``session_sample.jsonl``: a small synthetic generic trace made by us (no real data).

8 conversations of 4 turns over ~30 s of trace time. Every prompt is 64-token blocks (``hash_ids``,
``trace_block_size: 64``): 2 system-prompt blocks shared by every conversation of the same assistant
(``sys-a`` / ``sys-b``), then the conversation's history, which each turn extends by 2 full blocks; the
last, partial block of a turn is its own. So turn k+1 starts with every full block of turn k, as a
multi-turn chat's prefix cache would see it. Seeded: running this again writes the same file.

    python examples/traces/make_session_sample.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

BLOCK = 64
CONVERSATIONS = 8
TURNS = 4
TAIL_TOKENS = 20  # the partial last block of each prompt


def rows(seed: int = 7) -> list[dict[str, object]]:
    """The trace's rows, sorted by time."""
    rng = np.random.default_rng(seed)
    next_id = 100
    out: list[dict[str, object]] = []
    starts = np.cumsum(rng.exponential(2.0, size=CONVERSATIONS))
    for conv in range(CONVERSATIONS):
        system = [0, 1] if conv % 2 == 0 else [2, 3]
        history: list[int] = []
        t_ms = float(starts[conv]) * 1000
        for _ in range(TURNS):
            history += [next_id, next_id + 1]
            tail = next_id + 2
            next_id += 3
            ids = system + history + [tail]
            out.append(
                {
                    "timestamp_ms": round(t_ms, 1),
                    "input_length": BLOCK * (len(ids) - 1) + TAIL_TOKENS,
                    "output_length": int(rng.integers(8, 33)),
                    "hash_ids": ids,
                    "session_id": f"conv-{conv}",
                }
            )
            t_ms += float(rng.uniform(1500, 4000))
    return sorted(out, key=lambda r: float(str(r["timestamp_ms"])))


def main() -> None:
    path = Path(__file__).with_name("session_sample.jsonl")
    path.write_text("".join(json.dumps(r) + "\n" for r in rows()), encoding="utf-8")


if __name__ == "__main__":
    main()
