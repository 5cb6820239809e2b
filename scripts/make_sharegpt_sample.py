"""Generate sglang_test_framework/data/sharegpt_sample.json: a small synthetic ShareGPT-format file
(self-made text, nothing downloaded) with realistic, long-tailed prompt and answer lengths."""

from __future__ import annotations

import json
import random
from pathlib import Path

TOPICS = [
    "python",
    "kubernetes",
    "gpu",
    "cooking",
    "history",
    "travel",
    "finance",
    "music",
    "chemistry",
    "databases",
    "networking",
    "poetry",
    "statistics",
    "gardening",
    "physics",
    "law",
]
WORDS = (  # noqa: SIM905 - a readable word list
    "the a of to and in is for on with as by at from that this it be are was can will how what why model server "
    "request token cache batch latency memory queue policy worker router prompt answer explain describe compare "
    "write list example step first then finally because however also more data system value result time simple "
    "large small fast slow better best error test run build"
).split()


def sentence(rng: random.Random, topic: str) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 18))]
    words.insert(rng.randrange(len(words)), topic)
    return " ".join(words).capitalize() + "."


def text(rng: random.Random, topic: str, n_words: int) -> str:
    out: list[str] = []
    while sum(len(s.split()) for s in out) < n_words:
        out.append(sentence(rng, topic))
    return " ".join(out)


def main() -> None:
    rng = random.Random(20261122)
    rows = []
    for i in range(300):
        topic = rng.choice(TOPICS)
        prompt_words = min(800, max(20, int(rng.lognormvariate(4.6, 0.8))))
        answer_words = min(600, max(20, int(rng.lognormvariate(4.9, 0.7))))
        rows.append(
            {
                "id": f"synthetic-{i:04d}",
                "conversations": [
                    {"from": "human", "value": text(rng, topic, prompt_words)},
                    {"from": "gpt", "value": text(rng, topic, answer_words)},
                ],
            }
        )
    out = Path(__file__).resolve().parents[1] / "sglang_test_framework" / "data" / "sharegpt_sample.json"
    out.write_text(json.dumps(rows))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, {len(rows)} conversations)")


if __name__ == "__main__":
    main()
