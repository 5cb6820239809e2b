"""RequestGenerator: seeded, reproducible workloads (datasets × lengths × arrival times)."""

from __future__ import annotations

import math

import numpy as np

from ..config.workload import WorkloadConfig
from ..records import Request
from .datasets import lengths, load_samples
from .tokenizer import get_tokenizer

__all__ = ["RequestGenerator"]


class RequestGenerator:
    """Builds the request list of a workload. Same config and seed → identical requests."""

    def __init__(self, seed: int = 42) -> None:
        self.seed = seed

    def _rng(self, salt: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, salt])

    def generate_poisson_arrivals(self, rate: float, duration: float, burstiness: float = 1.0) -> list[float]:
        """Arrival offsets (s) of a Poisson (gamma if burstiness ≠ 1) process with ``rate`` req/s
        within ``duration`` seconds."""
        if rate <= 0 or duration <= 0:
            raise ValueError("rate and duration must be > 0")
        rng = self._rng(1)
        out: list[float] = []
        t = 0.0
        scale = 1.0 / (rate * burstiness)
        while True:
            t += float(rng.gamma(burstiness, scale))
            if t > duration:
                return out
            out.append(t)

    def arrival_offsets(self, num: int, rate: float, burstiness: float = 1.0) -> list[float]:
        """Offsets (s) of ``num`` arrivals: cumulative gamma(burstiness) gaps with mean 1/rate; all 0 for inf."""
        if math.isinf(rate):
            return [0.0] * num
        gaps = self._rng(1).gamma(burstiness, 1.0 / (rate * burstiness), size=num)
        gaps[0] = 0.0  # the first request goes out at the start, like bench_serving
        return [float(x) for x in np.cumsum(gaps)]

    def generate_length_distribution(
        self, num: int, input_len: int, output_len: int, range_ratio: float = 0.0
    ) -> tuple[list[int], list[int]]:
        """Input and output lengths, each uniform in [max(int(L·ratio), 1), L] (SGLang's rule)."""
        rng = self._rng(2)
        return lengths(rng, num, input_len, range_ratio), lengths(rng, num, output_len, range_ratio)

    def generate_requests(self, config: WorkloadConfig) -> list[Request]:
        """The workload's requests, ordered by arrival."""
        tok = get_tokenizer(config.tokenizer_path)
        samples = load_samples(config, tok, self._rng(3))
        offsets = self.arrival_offsets(len(samples), config.request_rate, config.burstiness)
        requests = [
            Request(
                request_id=f"req-{i:06d}",
                prompt=s.prompt,
                prompt_len=s.prompt_len,
                output_len=s.output_len,
                arrival_offset_s=s.offset_s if s.offset_s is not None else offsets[i],
                messages=s.messages,
                prompt_token_ids=s.prompt_token_ids,
                group_id=s.group_id,
                turn=s.turn,
            )
            for i, s in enumerate(samples)
        ]
        requests.sort(key=lambda r: r.arrival_offset_s)
        return requests
