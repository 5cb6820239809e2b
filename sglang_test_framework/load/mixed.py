"""Mixed workloads: the requests of several workloads interleaved by weight on one seeded arrival
process (config: ``WorkloadConfig.workload_mix``; docs/workloads.md, "Mixed workloads")."""

from __future__ import annotations

import numpy as np

from ..config.workload import WorkloadConfig
from ..config.workload_mix import component_config, mix_counts
from ..errors import ConfigError
from .datasets import Sample, load_samples
from .tokenizer import get_tokenizer

__all__ = ["mixed_samples"]

_LABEL_SALT = 29
_COMPONENT_SALT = 30


def _component_samples(config: WorkloadConfig, counts: list[int], seed: int) -> list[list[Sample]]:
    """Each component's samples (its own seeded RNG stream, so adding a component does not change the others)."""
    out: list[list[Sample]] = []
    for index, (entry, count) in enumerate(zip(config.workload_mix, counts, strict=True)):
        if count == 0:
            out.append([])
            continue
        try:
            component = component_config(config, entry, num_prompts=count)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        tok = get_tokenizer(component.tokenizer_path)
        out.append(load_samples(component, tok, np.random.default_rng([seed, _COMPONENT_SALT, index])))
    return out


def mixed_samples(config: WorkloadConfig, seed: int) -> tuple[list[Sample], list[str]]:
    """The ``config.num_prompts`` samples of a mix in arrival-slot order, and each one's component name.

    Component *i* gets exactly ``mix_counts(weights, num_prompts)[i]`` of the slots, spread over the run
    by a seeded shuffle; the caller gives slot *k* the *k*-th arrival time of the config's own process
    (rate, burstiness, ramp-up, duration), so the mix shares one arrival process.

    Raises:
        DatasetError: A component's dataset file or tokenizer cannot be used.
        ConfigError: A component's fields are invalid.
    """
    entries = config.workload_mix
    counts = mix_counts([e.weight for e in entries], config.num_prompts)
    per_component = _component_samples(config, counts, seed)
    labels = np.repeat(np.arange(len(entries)), counts)
    np.random.default_rng([seed, _LABEL_SALT]).shuffle(labels)
    taken = [0] * len(entries)
    samples: list[Sample] = []
    for label in labels.tolist():
        samples.append(per_component[label][taken[label]])
        taken[label] += 1
    return samples, [entries[label].name for label in labels.tolist()]
