"""RequestGenerator: seeded, reproducible workloads (datasets × lengths × arrival times)."""

from __future__ import annotations

import math

import numpy as np

from ..config.load_shape import expected_arrivals, inverse_expected_arrivals
from ..config.stages import inverse_stage_arrivals, segments, stage_arrivals, stages_duration_s
from ..config.workload import MAX_NUM_PROMPTS, MIN_REQUEST_RATE, WorkloadConfig
from ..errors import ConfigError
from ..records import Request
from .chains import chain_offsets, link_chains
from .datasets import load_samples
from .mixed import mixed_samples
from .tokenizer import get_tokenizer

__all__ = ["RequestGenerator"]


def _check_arrival_args(rate: float, burstiness: float) -> None:
    if math.isnan(rate) or rate < MIN_REQUEST_RATE:
        raise ConfigError(f"rate: {rate} req/s; use a rate ≥ {MIN_REQUEST_RATE:g} req/s (or inf for all at once)")
    if not (math.isfinite(burstiness) and burstiness > 0):
        raise ConfigError(f"burstiness: {burstiness}; use a finite number > 0 (1 = Poisson)")


class RequestGenerator:
    """Builds the request list of a workload. Same config and seed → identical requests."""

    def __init__(self, seed: int = 42) -> None:
        self.seed = seed

    def _rng(self, salt: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, salt])

    def generate_poisson_arrivals(self, rate: float, duration: float, burstiness: float = 1.0) -> list[float]:
        """Arrival offsets (s) of a Poisson (gamma if burstiness ≠ 1) process with ``rate`` req/s
        within ``duration`` seconds.

        Raises:
            ConfigError: ``rate`` or ``duration`` is not a finite number > 0, ``burstiness`` is not
                finite and > 0, or more than ``MAX_NUM_PROMPTS`` arrivals are expected.
        """
        _check_arrival_args(rate, burstiness)
        if not (math.isfinite(rate) and math.isfinite(duration) and duration > 0):
            raise ConfigError("rate and duration must be finite numbers > 0 (an infinite rate has no arrival times)")
        if rate * duration > MAX_NUM_PROMPTS:
            raise ConfigError(f"rate × duration = {rate * duration:g} arrivals; keep it ≤ {MAX_NUM_PROMPTS}")
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
        """Offsets (s) of ``num`` arrivals: cumulative gamma(burstiness) gaps with mean 1/rate, the first
        at 0; all 0 for ``rate=inf``.

        Raises:
            ConfigError: ``rate`` is NaN or below ``MIN_REQUEST_RATE``, or ``burstiness`` is not finite and > 0.
        """
        _check_arrival_args(rate, burstiness)
        if math.isinf(rate):
            return [0.0] * num
        if num == 0:
            return []
        gaps = self._rng(1).gamma(burstiness, 1.0 / (rate * burstiness), size=num)
        gaps[0] = 0.0  # the first request goes out at the start, like bench_serving
        return [float(x) for x in np.cumsum(gaps)]

    def shaped_arrival_offsets(self, config: WorkloadConfig, num: int) -> list[float]:
        """Offsets (s) of ``num`` arrivals shaped by ``config``'s ramp-up and ``duration_s``
        (docs/workloads.md); :meth:`arrival_offsets` when the config has neither.

        A unit-rate process (gaps gamma(burstiness) with mean 1, the first arrival at 0) is mapped through
        Λ⁻¹, the inverse of the expected arrivals of the ramped rate (:mod:`..config.load_shape`). With
        ``duration_s`` its event times are first scaled by one common factor so that the arrival after the
        last would fall exactly at ``duration_s``: the ``num`` arrivals fill ``[0, duration_s)``.
        """
        if config.stages and config.virtual_users is None:
            return self._staged_offsets(config, num)
        rate, ramp_s, start_rate = config.request_rate, config.ramp_up_s, config.ramp_up_start_rate
        if config.duration_s is None and ramp_s <= 0:
            return self.arrival_offsets(num, rate, config.burstiness)
        _check_arrival_args(rate, config.burstiness)
        if math.isinf(rate) or num == 0:
            return [0.0] * num
        gaps = self._rng(1).gamma(config.burstiness, 1.0 / config.burstiness, size=num)
        events = np.concatenate([[0.0], np.cumsum(gaps)])
        if config.duration_s is not None:
            events *= expected_arrivals(config.duration_s, rate, ramp_s, start_rate) / events[-1]
        offsets = inverse_expected_arrivals(events[:-1], rate, ramp_s, start_rate)
        return [float(x) for x in offsets]

    def _staged_offsets(self, config: WorkloadConfig, num: int) -> list[float]:
        """Offsets (s) of ``num`` arrivals following ``config.stages``: a unit-rate process (gamma(burstiness)
        gaps with mean 1) scaled so that the arrival after the last would fall at the schedule's end,
        mapped through Λ⁻¹ of the staged rate (:mod:`..config.stages`)."""
        if num == 0:
            return []
        segs = segments(config.stages)
        total = stage_arrivals(segs, stages_duration_s(config.stages))
        gaps = self._rng(1).gamma(config.burstiness, 1.0 / config.burstiness, size=num)
        events = np.concatenate([[0.0], np.cumsum(gaps)])
        events *= total / events[-1]
        return [float(x) for x in inverse_stage_arrivals(segs, events[:-1])]

    def generate_requests(self, config: WorkloadConfig) -> list[Request]:
        """The workload's ``config.num_prompts`` requests, ordered by arrival (closed-loop sessions and
        virtual users as chains, :mod:`.chains`).

        Raises:
            DatasetError: The dataset file or tokenizer cannot be used (the message names the file).
        """
        tok = get_tokenizer(config.tokenizer_path)
        if config.workload_mix:
            samples, workloads = mixed_samples(config, self.seed)
        else:
            samples, workloads = load_samples(config, tok, self._rng(3)), []
        heads = sum(1 for s in samples if not s.extends_previous and s.offset_s is None)
        offsets = chain_offsets(samples, self.shaped_arrival_offsets(config, heads))
        requests = [
            Request(
                request_id=f"req-{i:06d}",
                prompt=s.prompt,
                prompt_len=s.prompt_len,
                output_len=s.output_len,
                arrival_offset_s=offsets[i],
                messages=s.messages,
                prompt_token_ids=s.prompt_token_ids,
                prompt_source=s.prompt_source,
                group_id=s.group_id,
                turn=s.turn,
                workload=workloads[i] if workloads else None,
            )
            for i, s in enumerate(samples)
        ]
        link_chains(requests, samples, config, self._rng(5))  # sessions, virtual users (load/chains.py)
        requests.sort(key=lambda r: r.arrival_offset_s)
        return requests
