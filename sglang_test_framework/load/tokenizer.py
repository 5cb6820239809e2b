"""Tokenizers for workload generation: the built-in word tokenizer (shared with the simulator) or a
local Hugging Face tokenizer directory. Nothing is ever downloaded."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from ..errors import DatasetError
from ..sim.tokenizer import SimpleTokenizer

__all__ = ["HFTokenizer", "Tokenizer", "get_tokenizer"]


class Tokenizer(Protocol):
    """What the load generator needs from a tokenizer."""

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def count(self, text: str) -> int: ...


class HFTokenizer:
    """A local Hugging Face tokenizer (``transformers.AutoTokenizer``, ``local_files_only``)."""

    def __init__(self, path: str) -> None:
        try:
            from transformers import AutoTokenizer
        except ImportError as exc:
            raise DatasetError(
                f"tokenizer_path={path!r} needs the transformers package: pip install "
                "transformers (or omit tokenizer_path to use the built-in tokenizer)"
            ) from exc
        try:
            self._tok: Any = AutoTokenizer.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise DatasetError(
                f"tokenizer_path={path!r}: no usable tokenizer there ({' '.join(str(exc).split())[:200]}); pass a "
                "directory holding tokenizer.json / tokenizer_config.json, or omit it"
            ) from exc
        self.vocab_size = int(self._tok.vocab_size)

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._tok.decode(list(ids)))

    def count(self, text: str) -> int:
        return len(self.encode(text))


def get_tokenizer(path: str | None) -> SimpleTokenizer | HFTokenizer:
    """``None`` → the built-in tokenizer; a local directory → its Hugging Face tokenizer."""
    if path is None:
        return SimpleTokenizer()
    if not Path(path).is_dir():
        raise DatasetError(
            f"tokenizer_path={path!r} is not a local directory; pass a directory holding "
            "tokenizer.json / tokenizer_config.json (nothing is downloaded), or omit it"
        )
    return HFTokenizer(path)
