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
from ..fileio import jsonl_values
from ..records import ChatMessage, PromptSource
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
    offset_s: float | None = None  # dataset-defined arrival (traces), else None
    session: int | None = None  # closed-loop session (becomes Request.chain_id)
    extends_previous: bool = False  # a later session turn: only its new user part (load/sessions.py)
    think_time_s: float | None = None  # a session turn's own think time (e.g. a trace's delay), else drawn
    prompt_source: PromptSource | None = None  # the text is built at send time (trace replay); prompt is ""


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
    ``sharegpt_context_len`` are skipped; when fewer than ``num_prompts`` remain they are repeated.
    With ``sharegpt_sessions`` every turn of each conversation is replayed (:func:`_sharegpt_sessions`)."""
    if cfg.sharegpt_sessions:
        return _sharegpt_sessions(cfg, tok, rng)
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
    for where, obj in jsonl_values(_read_text(path, "JSONL file"), path):
        prompt, out_len, messages = _custom_row(obj, where, cfg.random_output_len)
        rows.append(Sample(prompt, tok.count(prompt), out_len, messages=messages))
    if not rows:
        raise DatasetError(
            f'{path}: no rows; write one JSON object per line, e.g. {{"prompt": "...", "output_len": 64}}'
        )
    return [rows[i % len(rows)] for i in range(cfg.num_prompts)]


# ----------------------------------------------------------------------------------------- synthetic chats
def _shared_prefix(cfg: WorkloadConfig, tok: TokenizerProtocol, rng: np.random.Generator) -> list[Sample]:
    """Uniform: every group × gsp_prompts_per_group, shuffled; zipf: num_prompts draws of a group.

    With ``gsp_num_turns`` > 1 each of those prompts opens a closed-loop conversation (SGLang's
    ``--gsp-num-turns``): every later turn asks a new question of ``gsp_question_len`` tokens after the
    server's answers so far, so the request count is multiplied by the turns (zipf: num_prompts / turns
    conversations)."""
    turns = cfg.gsp_num_turns
    systems = [_text_of(tok, rng, cfg.gsp_system_prompt_len)[0] for _ in range(cfg.gsp_num_groups)]
    if cfg.gsp_group_distribution == "zipf":
        weights = 1.0 / np.arange(1, cfg.gsp_num_groups + 1) ** cfg.gsp_zipf_alpha
        draws = cfg.num_prompts // turns
        groups = [int(g) for g in rng.choice(cfg.gsp_num_groups, size=draws, p=weights / weights.sum())]
    else:
        groups = [g for g in range(cfg.gsp_num_groups) for _ in range(cfg.gsp_prompts_per_group)]
        groups = [groups[int(i)] for i in rng.permutation(len(groups))]
    samples = []
    for conv, g in enumerate(groups):
        question = _text_of(tok, rng, cfg.gsp_question_len)[0]
        prompt = f"{systems[g]} {question}"
        session = conv if turns > 1 else None
        samples.append(Sample(prompt, tok.count(prompt), cfg.gsp_output_len, group_id=g, session=session))
        for turn in range(1, turns):
            text = _text_of(tok, rng, cfg.gsp_question_len)[0]
            samples.append(_next_turn(tok, text, None, cfg.gsp_output_len, g, conv, turn))
    return samples


def _next_turn(
    tok: TokenizerProtocol,
    text: str,
    ids: list[int] | None,
    output_len: int,
    group: int | None,
    session: int,
    turn: int,
) -> Sample:
    """A later session turn: only its new user text (the dispatcher prefixes the history)."""
    return Sample(
        text,
        tok.count(text),
        output_len,
        messages=[{"role": "user", "content": text}],
        prompt_token_ids=ids,
        group_id=group,
        turn=turn,
        session=session,
        extends_previous=True,
    )


def _multi_turn(cfg: WorkloadConfig, tok: TokenizerProtocol, rng: np.random.Generator) -> list[Sample]:
    """Closed-loop conversations of ``multi_turn_turns`` user turns of ``multi_turn_user_len`` tokens;
    each later turn follows the server's real answers (load/sessions.py)."""
    samples = []
    for conv in range(cfg.multi_turn_num_conversations):
        for turn in range(cfg.multi_turn_turns):
            text, ids = _text_of(tok, rng, cfg.multi_turn_user_len)
            if turn == 0:
                messages: list[ChatMessage] = [{"role": "user", "content": text}]
                samples.append(
                    Sample(
                        text,
                        tok.count(text),
                        cfg.multi_turn_assistant_len,
                        messages=messages,
                        prompt_token_ids=ids,
                        group_id=conv,
                        session=conv,
                    )
                )
            else:
                samples.append(_next_turn(tok, text, ids, cfg.multi_turn_assistant_len, conv, conv, turn))
    return samples


def _sharegpt_turns(row: Any) -> list[tuple[str, str]]:
    """The (user, reference answer) pairs of a ShareGPT row, in order (after any leading system turns),
    up to the first malformed turn."""
    if not isinstance(row, dict):
        return []
    turns = next((row[k] for k in ("conversations", "conversation", "messages") if k in row), None)
    if not isinstance(turns, list):
        return []
    while turns and isinstance(turns[0], dict) and turns[0].get("from", turns[0].get("role")) == "system":
        turns = turns[1:]  # a leading system prompt is not a user turn
    texts = [_turn_text(t) for t in turns]
    pairs: list[tuple[str, str]] = []
    for i in range(0, len(texts) - 1, 2):
        user, answer = texts[i], texts[i + 1]
        if user is None or answer is None:
            break
        pairs.append((user, answer))
    return pairs


def _sharegpt_sessions(cfg: WorkloadConfig, tok: TokenizerProtocol, rng: np.random.Generator) -> list[Sample]:
    """Every conversation of the file, in a seeded order, replayed turn by turn as a closed-loop session
    (the server's answers replace the recorded ones; each turn asks for as many tokens as the recorded
    answer had, or ``sharegpt_output_len``). A conversation stops before a turn whose context would pass
    ``sharegpt_context_len``; conversations are repeated (as new sessions) or the last one cut so that
    exactly ``num_prompts`` requests are sent."""
    path = Path(cfg.dataset_path) if cfg.dataset_path else sharegpt_sample_path()
    data = _load_sharegpt_json(path)
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected {_SHAREGPT_FORM}, got a JSON {type(data).__name__}")
    conversations: list[list[tuple[str, int, int]]] = []
    for idx in rng.permutation(len(data)):
        turns: list[tuple[str, int, int]] = []
        context = 0
        for user, answer in _sharegpt_turns(data[int(idx)]):
            p_len, o_len = tok.count(user), cfg.sharegpt_output_len or max(tok.count(answer), 1)
            context += p_len + o_len
            if p_len < 1 or (cfg.sharegpt_context_len and context > cfg.sharegpt_context_len):
                break
            turns.append((user, p_len, o_len))
        if turns:
            conversations.append(turns)
    if not conversations:
        raise DatasetError(f"{path}: no usable conversation for sharegpt_sessions; pass {_SHAREGPT_FORM}")
    samples: list[Sample] = []
    session = 0
    while len(samples) < cfg.num_prompts:
        for turn, (user, p_len, o_len) in enumerate(conversations[session % len(conversations)]):
            if len(samples) == cfg.num_prompts:
                break
            if turn == 0:
                messages: list[ChatMessage] = [{"role": "user", "content": user}]
                samples.append(Sample(user, p_len, o_len, messages=messages, session=session))
            else:
                samples.append(_next_turn(tok, user, None, o_len, None, session, turn))
        session += 1
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
    if cfg.dataset_name == "trace":  # the trace's selected rows (≤ num_prompts); imported here: it uses Sample
        from .trace_replay import trace_samples

        return trace_samples(cfg, tok)
    samples = _LOADERS[cfg.dataset_name](cfg, tok, rng)
    if len(samples) != cfg.num_prompts:
        raise DatasetError(
            f"{cfg.dataset_name} produced {len(samples)} requests but num_prompts is {cfg.num_prompts}; change "
            "configs with config.with_updates(...) (model_copy skips the check that derives num_prompts)"
        )
    return samples
