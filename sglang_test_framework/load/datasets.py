"""Datasets: prompts and output lengths (pure functions of the config and a seeded RNG)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..config.workload import WorkloadConfig
from ..errors import DatasetError
from ..records import ChatMessage
from .tokenizer import HFTokenizer
from .tokenizer import Tokenizer as TokenizerProtocol

__all__ = ["Sample", "load_samples", "sharegpt_sample_path"]


@dataclass(slots=True)
class Sample:
    """A prompt before arrival times are assigned."""

    prompt: str
    prompt_len: int
    output_len: int
    messages: list[ChatMessage] = field(default_factory=list)
    prompt_token_ids: list[int] | None = None
    group_id: int | None = None
    turn: int = 0
    offset_s: float | None = None  # dataset-defined arrival (multi-turn), else None


def sharegpt_sample_path() -> Path:
    """The built-in synthetic ShareGPT-format sample."""
    return Path(str(resources.files("sglang_test_framework") / "data" / "sharegpt_sample.json"))


def _random_ids(rng: np.random.Generator, n: int, vocab: int) -> list[int]:
    return [int(x) for x in rng.integers(0, vocab, size=n)]


def _text_of(tok: TokenizerProtocol, rng: np.random.Generator, n: int) -> tuple[str, list[int] | None]:
    """A text of exactly ``n`` tokens (built-in tokenizer) or ids + their decoded text (HF)."""
    vocab = int(getattr(tok, "vocab_size", 32000))
    ids = _random_ids(rng, n, vocab)
    text = tok.decode(ids)
    return text, (ids if isinstance(tok, HFTokenizer) else None)


def lengths(rng: np.random.Generator, num: int, length: int, ratio: float) -> list[int]:
    """SGLang's rule: uniform integers in [max(int(L·ratio), 1), L]."""
    low = max(int(length * ratio), 1)
    return [int(x) for x in rng.integers(low, length + 1, size=num)]


def _random(cfg: WorkloadConfig, tok: TokenizerProtocol, rng: np.random.Generator) -> list[Sample]:
    ins = lengths(rng, cfg.num_prompts, cfg.random_input_len, cfg.random_range_ratio)
    outs = lengths(rng, cfg.num_prompts, cfg.random_output_len, cfg.random_range_ratio)
    samples = []
    for n_in, n_out in zip(ins, outs, strict=True):
        text, ids = _text_of(tok, rng, n_in)
        samples.append(Sample(text, n_in, n_out, prompt_token_ids=ids))
    return samples


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(
            f"{path}: cannot read ShareGPT JSON ({exc}); pass a JSON list of "
            '{"conversations": [{"from": ..., "value": ...}, ...]} objects'
        ) from exc


def _sharegpt(cfg: WorkloadConfig, tok: TokenizerProtocol, rng: np.random.Generator) -> list[Sample]:
    path = Path(cfg.dataset_path) if cfg.dataset_path else sharegpt_sample_path()
    data = _read_json(path)
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a JSON list of conversations")
    pairs = []
    for row in data:
        conv = row.get("conversations", row.get("conversation")) if isinstance(row, dict) else None
        if isinstance(conv, list) and len(conv) >= 2:
            pairs.append((str(conv[0].get("value", "")), str(conv[1].get("value", ""))))
    order = rng.permutation(len(pairs))
    samples: list[Sample] = []
    for idx in order:
        prompt, answer = pairs[int(idx)]
        p_len = tok.count(prompt)
        o_len = cfg.sharegpt_output_len or tok.count(answer)
        if p_len < 2 or o_len < 2:
            continue
        if cfg.sharegpt_context_len and p_len + o_len > cfg.sharegpt_context_len:
            continue
        samples.append(Sample(prompt, p_len, o_len))
        if len(samples) == cfg.num_prompts:
            break
    if not samples:
        raise DatasetError(f"{path}: no usable conversations (need ≥2 turns of ≥2 tokens each)")
    while len(samples) < cfg.num_prompts:  # small files are cycled, like repeated sampling
        samples.append(samples[len(samples) % len(pairs) if len(pairs) else 0])
    return samples[: cfg.num_prompts]


def _custom(cfg: WorkloadConfig, tok: TokenizerProtocol, rng: np.random.Generator) -> list[Sample]:
    assert cfg.dataset_path is not None
    path = Path(cfg.dataset_path)
    rows: list[Sample] = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise DatasetError(f"{path}:{lineno}: not valid JSON ({exc})") from exc
        if not isinstance(obj, dict):
            raise DatasetError(f"{path}:{lineno}: expected a JSON object")
        messages = obj.get("messages") or []
        prompt = obj.get("prompt", obj.get("text"))
        if prompt is None and messages:
            prompt = " ".join(str(m.get("content", "")) for m in messages)
        out_len = obj.get("output_len", obj.get("max_tokens", cfg.random_output_len))
        if not isinstance(prompt, str) or not prompt:
            raise DatasetError(f'{path}:{lineno}: needs a non-empty "prompt" (or "text" / "messages")')
        if not isinstance(out_len, int) or out_len <= 0:
            raise DatasetError(f'{path}:{lineno}: "output_len" must be a positive integer')
        rows.append(Sample(prompt, tok.count(prompt), out_len, messages=list(messages)))
    if not rows:
        raise DatasetError(f"{path}: no rows; write one JSON object per line")
    return [rows[i % len(rows)] for i in range(cfg.num_prompts)]


def _shared_prefix(cfg: WorkloadConfig, tok: TokenizerProtocol, rng: np.random.Generator) -> list[Sample]:
    systems = [_text_of(tok, rng, cfg.gsp_system_prompt_len)[0] for _ in range(cfg.gsp_num_groups)]
    if cfg.gsp_group_distribution == "zipf":
        weights = 1.0 / np.arange(1, cfg.gsp_num_groups + 1) ** cfg.gsp_zipf_alpha
        groups = [int(g) for g in rng.choice(cfg.gsp_num_groups, size=cfg.num_prompts, p=weights / weights.sum())]
    else:
        groups = [g for g in range(cfg.gsp_num_groups) for _ in range(cfg.gsp_prompts_per_group)]
        groups = [groups[int(i)] for i in rng.permutation(len(groups))]
    samples = []
    for g in groups:
        question = _text_of(tok, rng, cfg.gsp_question_len)[0]
        prompt = f"{systems[g]} {question}"
        samples.append(Sample(prompt, tok.count(prompt), cfg.gsp_output_len, group_id=g))
    return samples


def _multi_turn(cfg: WorkloadConfig, tok: TokenizerProtocol, rng: np.random.Generator) -> list[Sample]:
    samples = []
    starts = (
        np.cumsum(rng.exponential(1.0 / max(cfg.request_rate, 1e-9), cfg.multi_turn_num_conversations))
        if np.isfinite(cfg.request_rate)
        else np.zeros(cfg.multi_turn_num_conversations)
    )
    for conv in range(cfg.multi_turn_num_conversations):
        history: list[ChatMessage] = []
        for turn in range(cfg.multi_turn_turns):
            history.append({"role": "user", "content": _text_of(tok, rng, cfg.multi_turn_user_len)[0]})
            prompt = " ".join(m["content"] for m in history)
            offset = float(starts[conv]) + turn * cfg.multi_turn_think_time_s
            samples.append(
                Sample(
                    prompt,
                    tok.count(prompt),
                    cfg.multi_turn_assistant_len,
                    messages=list(history),
                    group_id=conv,
                    turn=turn,
                    offset_s=offset,
                )
            )
            history.append({"role": "assistant", "content": _text_of(tok, rng, cfg.multi_turn_assistant_len)[0]})
    return samples


_LOADERS = {
    "random": _random,
    "sharegpt": _sharegpt,
    "custom": _custom,
    "generated-shared-prefix": _shared_prefix,
    "multi-turn": _multi_turn,
}


def load_samples(cfg: WorkloadConfig, tok: TokenizerProtocol, rng: np.random.Generator) -> list[Sample]:
    """Samples for ``cfg.dataset_name``."""
    return _LOADERS[cfg.dataset_name](cfg, tok, rng)
