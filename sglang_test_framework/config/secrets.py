"""The API key of a config: from the field (or ``--api-key``), a file, or ``SGLANG_TEST_API_KEY``; never
shown by ``repr()``, ``str()`` or ``model_dump()``, so saved configs and results never contain it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import Field, field_serializer, field_validator, model_validator

from .base import StrictModel, decode_utf8

__all__ = ["API_KEY_ENV", "REDACTED", "ApiKeyConfig"]

API_KEY_ENV = "SGLANG_TEST_API_KEY"
"""Environment variable read for the API key when neither ``api_key`` nor ``api_key_file`` is given."""

REDACTED = "***"
"""What dumps show instead of a set API key."""


def read_key_file(path: Path) -> str:
    """The first line of ``path``, stripped.

    Raises:
        ValueError: Missing, unreadable, not UTF-8, or an empty first line (message names the file).
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(
            f"api_key_file: cannot read {path} ({exc.strerror}); pass a readable file whose first line is the key"
        ) from None
    try:
        text = decode_utf8(data, path, "the API key file")
    except UnicodeError as exc:
        raise ValueError(f"api_key_file: {exc}") from None
    key = text.splitlines()[0].strip() if text.strip() else ""
    if not key:
        raise ValueError(f"api_key_file: the first line of {path} is empty; write the key on the first line")
    return key


class ApiKeyConfig(StrictModel):
    """Mixin for configs holding an API key (sent as ``Authorization: Bearer …``).

    Where the key comes from, first match wins: ``api_key`` (field or ``--api-key``), ``api_key_file``
    (its first line, stripped), the environment variable ``SGLANG_TEST_API_KEY``. Giving both
    ``api_key`` and ``api_key_file`` is an error. Code that needs the key reads ``config.api_key``
    (``str | None``). Dumps show ``"***"`` when a key is set (null when not); loading such a dump takes
    the key from ``api_key_file`` or the environment again, and fails if neither has it.
    """

    api_key: str | None = Field(
        default=None,
        repr=False,
        description=f"API key (else from api_key_file or ${API_KEY_ENV}); saved as '{REDACTED}'",
    )
    api_key_file: Path | None = Field(default=None, description="file whose first line is the API key")

    @field_validator("api_key")
    @classmethod
    def _key_not_blank(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError(f"empty; omit it, or give the key (or use api_key_file / ${API_KEY_ENV})")
        return v

    @model_validator(mode="after")
    def _resolve_api_key(self) -> Any:
        fields_set = self.__pydantic_fields_set__
        given = self.api_key if "api_key" in fields_set else None
        placeholder = given == REDACTED
        if placeholder:
            fields_set.discard("api_key")  # not a key: resolve it again below
            given = None
        if given is not None:
            if self.api_key_file is not None:
                raise ValueError("api_key and api_key_file: give one of them, not both")
            key: str | None = given
        elif self.api_key_file is not None:
            key = read_key_file(self.api_key_file)
        else:
            key = os.environ.get(API_KEY_ENV, "").strip() or None
            if key is None and placeholder:
                raise ValueError(
                    f"api_key: '{REDACTED}' is the placeholder saved configs hold instead of the key; give the "
                    f"key with ${API_KEY_ENV}, api_key_file or --api-key"
                )
        self.__dict__["api_key"] = key
        return self

    @field_serializer("api_key")
    def _redact_api_key(self, value: str | None) -> str | None:
        return REDACTED if value else None

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        yield from super().__repr_args__()
        if self.api_key:
            yield "api_key", REDACTED
