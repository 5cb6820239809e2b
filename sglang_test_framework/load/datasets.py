"""Datasets: prompts and output lengths (pure functions of the config and a seeded RNG; the only I/O
is reading the dataset file). Every loader returns exactly ``cfg.num_prompts`` samples."""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..config.base import decode_utf8
from ..config.workload import MAX_LEN_TOKENS, WorkloadConfig
from ..errors import DatasetError
from ..records import ChatMessage
from .tokenizer import HFTokenizer
from .tokenizer import Tokenizer as TokenizerProtocol

__all__ = ["Sample", "load_samples", "sharegpt_sample_path"]

logger = logging.getLogger(__name__)

_SHAREGPT_FORM = (
    'a JSON list of {"conversations": [{"from": "human", "value": "..."}, {"from": "gpt", "value": "..."}]} '
    '(or {"messages": [{"role": ..., "content": ...}, ...]}) objects'
)


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


def _read_text(path: Path, what: str) -> str:
    """The file as UTF-8 text; errors name the file (and the line for bad bytes) and the fix."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the {what} ({exc.strerror}); pass a readable file") from exc
    try:
        return decode_utf8(data, path, f"the {what}")
    except UnicodeError as exc:
        raise DatasetError(str(exc)) from None


def _text_of(tok: TokenizerProtocol, rng: np.random.Generator, n: int) -> tuple[str, list[int] | None]:
    """A text of exactly ``n`` tokens (built-in tokenizer) or ids + their decoded text (HF)."""
    vocab = int(getattr(tok, "vocab_size", 32000))
    ids = [int(x) for x in rng.integers(0, vocab, size=n)]
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


# ---------------------------------------------------------------------------------------------- ShareGPT
def _turn_text(turn: Any) -> str | None:
    """The text of a well-formed turn (a dict with string from/role and string value/content), else None."""
    if not isinstance(turn, dict):
        return None
    speaker = turn.get("from", turn.get("role"))
    text = turn.get("value", turn.get("content"))
    return text if isinstance(speaker, str) and isinstance(text, str) else None


def _conversation_pair(row: Any) -> tuple[tuple[str, str] | None, str]:
    """(prompt, reference answer) of a ShareGPT row, or (None, why it is unusable)."""
    if not isinstance(row, dict):
        return None, "entry is not an object"
    turns = next((row[k] for k in ("conversations", "conversation", "messages") if k in row), None)
    if not isinstance(turns, list):
        return None, "conversations/messages is missing or not a list"
    texts = [_turn_text(t) for t in turns]
    if any(t is None for t in texts):
        return None, "a turn is not an object with string from/role and value/content"
    if len(texts) < 2:
        return None, "fewer than 2 turns"
    return (str(texts[0]), str(texts[1])), ""


def _parse_sharegpt_rows(data: Any, path: Path) -> tuple[list[tuple[str, str]], Counter[str]]:
    """(prompt, answer) pairs of every well-formed conversation, and the skipped ones counted by reason.

    Raises:
        DatasetError: ``data`` is not a list.
    """
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected {_SHAREGPT_FORM}, got a JSON {type(data).__name__}")
    pairs: list[tuple[str, str]] = []
    skipped: Counter[str] = Counter()
    for row in data:
        pair, why = _conversation_pair(row)
        if pair is None:
            skipped[why] += 1
        else:
            pairs.append(pair)
    return pairs, skipped


def _load_sharegpt_json(path: Path) -> Any:
    text = _read_text(path, "ShareGPT JSON file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); pass {_SHAREGPT_FORM}") from None


def _sharegpt(cfg: WorkloadConfig, tok: TokenizerProtocol, rng: np.random.Generator) -> list[Sample]:
    """Conversations in a seeded random order; those with a prompt or answer under 2 tokens or over
    ``sharegpt_context_len`` are skipped; when fewer than ``num_prompts`` remain they are repeated."""
    path = Path(cfg.dataset_path) if cfg.dataset_path else sharegpt_sample_path()
    pairs, skipped = _parse_sharegpt_rows(_load_sharegpt_json(path), path)
    samples: list[Sample] = []
    for idx in rng.permutation(len(pairs)):
        prompt, answer = pairs[int(idx)]
        p_len = tok.count(prompt)
        o_len = cfg.sharegpt_output_len or tok.count(answer)
        if p_len < 2 or o_len < 2:
            skipped["prompt or answer shorter than 2 tokens"] += 1
            continue
        if cfg.sharegpt_context_len and p_len + o_len > cfg.sharegpt_context_len:
            skipped[f"prompt + output over sharegpt_context_len={cfg.sharegpt_context_len}"] += 1
            continue
        samples.append(Sample(prompt, p_len, o_len))
        if len(samples) == cfg.num_prompts:
            break
    reasons = ", ".join(f"{n} {why}" for why, n in skipped.most_common())
    if not samples:
        raise DatasetError(
            f"{path}: no usable conversation ({reasons or 'the list is empty'}); pass {_SHAREGPT_FORM} "
            "with prompt and answer of ≥ 2 tokens (raise sharegpt_context_len if it filtered them all)"
        )
    if skipped:
        logger.warning("%s: skipped %d conversations (%s)", path, sum(skipped.values()), reasons)
    usable = len(samples)
    if usable < cfg.num_prompts:
        logger.info("%s: %d usable conversations repeated to %d requests", path, usable, cfg.num_prompts)
        samples += [samples[i % usable] for i in range(usable, cfg.num_prompts)]
    return samples


# ------------------------------------------------------------------------------------------------ custom
def _custom_messages(value: Any, where: str) -> list[ChatMessage]:
    """``messages`` of a custom row: a list of {"role": str, "content": str} objects."""
    if not isinstance(value, list) or not value:
        raise DatasetError(f'{where}: "messages" must be a non-empty list of {{"role": ..., "content": ...}} objects')
    out: list[ChatMessage] = []
    for i, msg in enumerate(value):
        if not (isinstance(msg, dict) and isinstance(msg.get("role"), str) and isinstance(msg.get("content"), str)):
            raise DatasetError(
                f'{where}: messages[{i}] must be an object with string "role" and "content", got {msg!r:.60}'
            )
        out.append({"role": msg["role"], "content": msg["content"]})
    return out


def _custom_row(obj: Any, where: str, default_output_len: int) -> tuple[str, int, list[ChatMessage]]:
    if not isinstance(obj, dict):
        raise DatasetError(f'{where}: expected a JSON object like {{"prompt": "...", "output_len": 64}}')
    messages = _custom_messages(obj["messages"], where) if "messages" in obj else []
    prompt = obj.get("prompt", obj.get("text"))
    if prompt is None and messages:
        prompt = " ".join(m["content"] for m in messages)
    if not isinstance(prompt, str) or not prompt.strip():
        raise DatasetError(f'{where}: needs a non-empty string "prompt" (or "text" / "messages")')
    out_len = obj.get("output_len", obj.get("max_tokens", default_output_len))
    if isinstance(out_len, bool) or not isinstance(out_len, int) or not 0 < out_len <= MAX_LEN_TOKENS:
        raise DatasetError(f'{where}: "output_len" must be an integer from 1 to {MAX_LEN_TOKENS}, got {out_len!r:.40}')
    return prompt, out_len, messages


def _custom(cfg: WorkloadConfig, tok: TokenizerProtocol, rng: np.random.Generator) -> list[Sample]:
    """Every row in file order, repeated (or cut) to ``num_prompts``; the first bad row is an error."""
    if cfg.dataset_path is None:
        raise DatasetError("dataset_name='custom' needs dataset_path (a JSONL file)")
    path = Path(cfg.dataset_path)
    rows: list[Sample] = []
    for lineno, line in enumerate(_read_text(path, "JSONL file").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise DatasetError(f"{where}: not valid JSON ({exc}); write one JSON object per line") from None
        prompt, out_len, messages = _custom_row(obj, where, cfg.random_output_len)
        rows.append(Sample(prompt, tok.count(prompt), out_len, messages=messages))
    if not rows:
        raise DatasetError(
            f'{path}: no rows; write one JSON object per line, e.g. {{"prompt": "...", "output_len": 64}}'
        )
    return [rows[i % len(rows)] for i in range(cfg.num_prompts)]


# ----------------------------------------------------------------------------------------- synthetic chats
def _shared_prefix(cfg: WorkloadConfig, tok: TokenizerProtocol, rng: np.random.Generator) -> list[Sample]:
    """Uniform: every group × gsp_prompts_per_group, shuffled; zipf: num_prompts draws of a group."""
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
        np.cumsum(rng.exponential(1.0 / cfg.request_rate, cfg.multi_turn_num_conversations))
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
    """Exactly ``cfg.num_prompts`` samples for ``cfg.dataset_name`` (docs/workloads.md).

    Raises:
        DatasetError: The dataset file is unreadable or malformed, or the dataset's own count differs
            from ``num_prompts`` (a config changed with ``model_copy``, which skips validation).
    """
    samples = _LOADERS[cfg.dataset_name](cfg, tok, rng)
    if len(samples) != cfg.num_prompts:
        raise DatasetError(
            f"{cfg.dataset_name} produced {len(samples)} requests but num_prompts is {cfg.num_prompts}; change "
            "configs with config.with_updates(...) (model_copy skips the check that derives num_prompts)"
        )
    return samples
