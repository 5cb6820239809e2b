"""Trace replay: the rows a workload selects from its trace file, their arrival offsets, and prompts of
exactly ``input_length`` tokens whose blocks repeat exactly where the trace's hash ids (or prefix ids)
repeat (docs/workloads.md, "Trace replay").

A segment's tokens are a pure function of ``(seed, key)`` (a numpy generator seeded with both, never
Python's ``hash()``), so equal keys give identical token blocks in every run and process, and different
keys give different blocks. A partial last block is the first tokens of its id's full block.

Memory stays bounded: with the built-in tokenizer a request carries a :class:`TracePrompt` (its trace
row and the shared :class:`BlockTokens`) and its text is built when it is sent, from a bounded cache of
block texts; a whole Mooncake trace would otherwise hold ~1.2 GB of prompt text. With a Hugging Face
tokenizer the ids and text are built up front (the tokenizer does not travel to client processes).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config.trace_fields import trace_window
from ..config.workload import WorkloadConfig
from ..errors import DatasetError
from ..sim.tokenizer import SimpleTokenizer
from ..traces import Segment, Trace, TraceRow, read_trace, select_rows
from .datasets import Sample
from .tokenizer import HFTokenizer, Tokenizer

__all__ = ["BlockTokens", "TracePrompt", "TraceReplay", "load_replay", "trace_samples"]

_KIND_CODE = {"h": 1, "p": 2, "u": 3}
_CACHE_BLOCKS = 4096


@dataclass(slots=True)
class TraceReplay:
    """What a workload replays: the parsed trace, the selected rows and their offsets (s, wall time)."""

    trace: Trace
    rows: list[TraceRow]
    offsets_s: list[float]


def load_replay(cfg: WorkloadConfig) -> TraceReplay:
    """Read the workload's trace and select its rows.

    Raises:
        DatasetError: The file is malformed, or the selection is empty (the message names the fields).
    """
    assert cfg.dataset_path is not None  # checked by WorkloadConfig
    trace = read_trace(Path(cfg.dataset_path), cfg.trace_format, cfg.trace_block_size)
    rows, offsets = select_rows(trace, trace_window(cfg, cfg.num_prompts))
    if not rows:
        span_s = trace.rows[-1].timestamp_ns / 1e9
        raise DatasetError(
            f"{cfg.dataset_path}: no rows in the selected window ({len(trace.rows)} rows over {span_s:.1f} s); "
            "check trace_start_s, trace_max_duration_s and trace_rows"
        )
    return TraceReplay(trace, rows, offsets)


class BlockTokens:
    """Token ids (and built-in-tokenizer text) of prompt segments: a pure function of ``(seed, key)``,
    cached for the hottest blocks. Pickles without its caches (a client process rebuilds them)."""

    def __init__(self, seed: int, vocab_size: int, block_size: int) -> None:
        self.seed = seed
        self.vocab_size = vocab_size
        self.block_size = block_size
        self._cache: dict[tuple[str, int | str], np.ndarray] = {}
        self._texts: dict[tuple[str, int | str], str] = {}
        self._words: np.ndarray | None = None  # the built-in tokenizer's vocabulary, by id

    def __getstate__(self) -> tuple[int, int, int]:
        return self.seed, self.vocab_size, self.block_size

    def __setstate__(self, state: tuple[int, int, int]) -> None:
        self.__init__(*state)  # type: ignore[misc]

    def _key_int(self, ident: int | str) -> int:
        if isinstance(ident, int):
            return ident
        return int.from_bytes(hashlib.sha256(ident.encode()).digest()[:8], "little")

    def segment(self, key: tuple[str, int | str], size: int) -> np.ndarray:
        """The first ``size`` tokens of the segment ``key`` (hash blocks: of its ``block_size`` tokens)."""
        tokens = self._cache.get(key)
        full = self.block_size if key[0] == "h" else size
        if tokens is None or len(tokens) < full:
            rng = np.random.default_rng([self.seed, _KIND_CODE[key[0]], self._key_int(key[1])])
            tokens = rng.integers(0, self.vocab_size, size=full, dtype=np.int64)
            if len(self._cache) >= _CACHE_BLOCKS:
                self._cache.clear()
            self._cache[key] = tokens
        return tokens[:size]

    def prompt(self, segments: list[Segment]) -> list[int]:
        """Token ids of a whole prompt."""
        if not segments:
            return []
        return np.concatenate([self.segment(key, size) for key, size in segments]).tolist()  # type: ignore[no-any-return]

    def text(self, segments: list[Segment]) -> str:
        """The built-in tokenizer's text of a whole prompt (= its ``decode(prompt(segments))``): full
        blocks and shared prefixes come from a bounded cache of texts, the rest is decoded."""
        if self._words is None:
            tok = SimpleTokenizer(self.vocab_size)
            self._words = np.array([tok.word(i) for i in range(self.vocab_size)], dtype=object)
        parts = []
        for key, size in segments:
            shared = key[0] == "p" or (key[0] == "h" and size == self.block_size)
            text = self._texts.get(key) if shared else None
            if text is None:
                text = " ".join(self._words[self.segment(key, size)].tolist())  # SimpleTokenizer.decode, vectorised
                if shared:
                    if len(self._texts) >= _CACHE_BLOCKS:
                        self._texts.clear()
                    self._texts[key] = text
            parts.append(text)
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class TracePrompt:
    """A trace row's prompt, built when the request is sent (:class:`~..records.PromptSource`)."""

    blocks: BlockTokens
    row: TraceRow

    def text(self) -> str:
        """The prompt text: exactly ``row.input_length`` built-in tokens."""
        return self.blocks.text(self.row.segments(self.blocks.block_size))


def trace_samples(cfg: WorkloadConfig, tok: Tokenizer) -> list[Sample]:
    """One sample per selected row, in time order, with its arrival offset (``offset_s``).

    The built-in tokenizer encodes its own decoded text exactly, so text prompts have exactly
    ``input_length`` tokens; with a Hugging Face tokenizer the ids are sent as ``input_ids`` (``/generate``)
    and the decoded text elsewhere (a server may count a few tokens differently at block joins).
    Rows of one ``session_id`` share a ``group_id``; with ``trace_sessions="closed"`` they are also one
    closed-loop session (:func:`_session_fields`).
    """
    replay = load_replay(cfg)
    blocks = BlockTokens(cfg.seed, int(getattr(tok, "vocab_size", 32000)), cfg.trace_block_size)
    sessions: dict[str, int] = {}
    last_offset: dict[int, float] = {}
    samples = []
    for row, offset in zip(replay.rows, replay.offsets_s, strict=True):
        group = None if row.session_id is None else sessions.setdefault(row.session_id, len(sessions))
        session, think_s = _session_fields(cfg, group, offset, last_offset)
        sample = Sample("", row.input_length, row.output_length, group_id=group, offset_s=offset)
        sample.session, sample.think_time_s = session, think_s
        if isinstance(tok, HFTokenizer):  # built up front: the tokenizer does not travel to client processes
            sample.prompt_token_ids = blocks.prompt(row.segments(cfg.trace_block_size))
            sample.prompt = tok.decode(sample.prompt_token_ids)
        else:
            sample.prompt_source = TracePrompt(blocks, row)
        samples.append(sample)
    return samples


def _session_fields(
    cfg: WorkloadConfig, group: int | None, offset_s: float, last_offset: dict[int, float]
) -> tuple[int | None, float | None]:
    """``(session, think time)`` of a row: a closed-loop session turn waits for the previous turn's answer,
    then ``trace_think_time_s`` or else the trace's own gap between the two turns (replay time scale).
    The turn keeps the trace's prompt: it does not carry the server's answer (docs/workloads.md)."""
    if cfg.trace_sessions != "closed" or group is None:
        return None, None
    previous = last_offset.get(group)
    last_offset[group] = offset_s
    if previous is None:
        return group, 0.0
    think_s = cfg.trace_think_time_s if cfg.trace_think_time_s is not None else offset_s - previous
    return group, think_s
