"""The built-in word-level tokenizer shared by the simulator and the load generator.

One token is one whitespace-separated word. The vocabulary is a fixed, deterministic list of
pronounceable pseudo-words, so ``encode(decode(ids)) == ids`` for every id sequence and a prompt of
exactly N tokens is simply N vocabulary words joined by spaces. Words outside the vocabulary (for
example in ShareGPT text) map to a stable id by CRC32, so any text has a well-defined token count and
identical texts have identical ids (which is what the radix cache needs).

This module lives in ``sim`` because the simulator imports nothing else from the package; the load
generator imports it from here.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

__all__ = ["DEFAULT_VOCAB_SIZE", "SimpleTokenizer"]

DEFAULT_VOCAB_SIZE = 32000

_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "ch", "sh", "th", "br", "tr", "pl")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou", "ea")
_CODAS = ("", "n", "r", "s", "l", "t", "m", "k")


def _build_vocab(size: int) -> list[str]:
    syllables = [o + v + c for o in _ONSETS for v in _VOWELS for c in _CODAS]  # 1280 syllables
    words: list[str] = []
    seen: set[str] = set()
    n = len(syllables)
    i = 0
    while len(words) < size:
        # Two-syllable words in a fixed pseudo-random order, then three-syllable ones if needed.
        a, b = divmod((i * 7919) % (n * n), n)
        word = syllables[a] + syllables[b] if i < n * n else syllables[a] + syllables[b] + syllables[i % n]
        if word not in seen:
            seen.add(word)
            words.append(word)
        i += 1
    return words


class SimpleTokenizer:
    """Deterministic word-level tokenizer (see module docstring)."""

    def __init__(self, vocab_size: int = DEFAULT_VOCAB_SIZE) -> None:
        if vocab_size < 16:
            raise ValueError(f"vocab_size must be >= 16, got {vocab_size}")
        self.vocab_size = vocab_size
        self._words = _build_vocab(vocab_size)
        self._ids = {w: i for i, w in enumerate(self._words)}

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (one per whitespace-separated word)."""
        ids = self._ids
        out: list[int] = []
        for word in text.split():
            tid = ids.get(word)
            out.append(tid if tid is not None else zlib.crc32(word.encode()) % self.vocab_size)
        return out

    def count(self, text: str) -> int:
        """Number of tokens in ``text`` without building the id list."""
        return len(text.split())

    def decode(self, ids: Sequence[int]) -> str:
        """Text for ``ids`` (vocabulary words joined by single spaces)."""
        words = self._words
        size = self.vocab_size
        return " ".join(words[i % size] for i in ids)

    def word(self, token_id: int) -> str:
        """The vocabulary word of one token id."""
        return self._words[token_id % self.vocab_size]
