"""Base model for every configuration: unknown keys are rejected, floats must be finite, and every error
(YAML file or field) is one line naming the file or field and the fix."""

from __future__ import annotations

import copy
import difflib
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import ConfigError

__all__ = ["StrictModel", "decode_utf8", "format_validation_error", "load_yaml_mapping"]

ModelT = TypeVar("ModelT", bound="StrictModel")


def _nested_model(model: type[BaseModel] | None, name: str) -> type[BaseModel] | None:
    """The model class of field ``name`` of ``model`` (``X`` or ``X | None``), else None."""
    info = model.model_fields.get(name) if model is not None else None
    if info is None:
        return None
    candidates = [info.annotation, *typing.get_args(info.annotation)]
    return next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)


def _unknown_field_message(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> str:
    """'unknown field; did you mean X? …' with X the closest field name of the model at ``loc``."""
    owner = model
    for part in loc[:-1]:
        owner = _nested_model(owner, str(part))
    close = difflib.get_close_matches(str(loc[-1]), list(owner.model_fields), n=1) if owner is not None else []
    hint = f"did you mean {close[0]}? " if close else ""
    return f"unknown field; {hint}check the spelling or remove it"


def format_validation_error(exc: ValidationError, source: str, model: type[BaseModel] | None = None) -> str:
    """All problems on one line, each naming its field path, e.g.
    ``invalid NodeConfig in a.yaml: request_rate: Input should be greater than 0; …``.

    Args:
        exc: The pydantic error.
        source: What was being validated (``"NodeConfig in a.yaml"``).
        model: The model class, to suggest the closest field name for an unknown key.
    """
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = " ".join(str(err["msg"]).split()).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = _unknown_field_message(model, tuple(err["loc"]))
        problems.append(f"{loc}: {msg}" if loc else msg)
    return f"invalid {source}: " + "; ".join(problems)


def decode_utf8(data: bytes, path: Path, what: str) -> str:
    """``data`` as UTF-8 text (a leading BOM is dropped).

    Raises:
        UnicodeError: Not UTF-8; the message names the file, the line and the fix.
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UnicodeError(
            f"{path}:{line}: {what} is not UTF-8 text (byte 0x{data[exc.start]:02x}); "
            f"re-save it as UTF-8, e.g. iconv -f latin1 -t utf-8 {path.name} > fixed_{path.name}"
        ) from None


def load_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """Read a UTF-8 YAML file that must hold a mapping of field names; errors are one line naming the
    file (and the line where known) and the fix.

    Raises:
        ConfigError: Missing or unreadable file, not UTF-8, not YAML, not a mapping, or a key that is
            not a string.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist; pass the path of a YAML file")
    try:
        text = decode_utf8(p.read_bytes(), p, "the config file")
    except UnicodeError as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        raise ConfigError(f"config file {p} cannot be read ({exc.strerror}); check its permissions") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise ConfigError(f"config file {p}{where}: not valid YAML ({problem}); fix the syntax there") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {p} must contain a mapping of field: value lines, got a {type(data).__name__}; "
            "write e.g. 'request_rate: 10' at the top level"
        )
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise ConfigError(f"config file {p}: key {bad[0]!r} is not a field name; keys are names like request_rate")
    return data


class StrictModel(BaseModel):
    """Pydantic v2 model that rejects unknown keys, re-validates on assignment, rejects NaN and ±inf in
    float fields (a field that gives inf a meaning opts in), and keeps input values (secrets) out of
    validation error messages."""

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, frozen=False, allow_inf_nan=False, hide_input_in_errors=True
    )

    @classmethod
    def build(cls: type[ModelT], source: str = "config", **values: Any) -> ModelT:
        """Construct, turning pydantic errors into one-line :class:`ConfigError` naming each field."""
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, source, cls)) from exc

    @classmethod
    def yaml_values(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Turn a YAML mapping into field values (subclasses accept template sections here)."""
        return data

    @classmethod
    def from_mapping(cls: type[ModelT], data: dict[str, Any], source: str = "config", **overrides: Any) -> ModelT:
        """Build from a mapping as read from YAML (template sections accepted; ``overrides`` win).

        Raises:
            ConfigError: One line naming ``source``, each offending field and the fix.
        """
        try:
            values = cls.yaml_values(data)
        except ConfigError as exc:
            raise ConfigError(f"invalid {source}: {exc}") from exc
        return cls.build(source=source, **{**values, **overrides})

    @classmethod
    def from_yaml(cls: type[ModelT], path: str | Path, **overrides: Any) -> ModelT:
        """Load from a YAML mapping (``overrides`` win); errors name the file and each offending field."""
        return cls.from_mapping(load_yaml_mapping(path), f"{cls.__name__} in {path}", **overrides)

    def to_yaml(self, path: str | Path) -> None:
        """Write this config as YAML (secrets as ``***``; loads back with :meth:`from_yaml` when the
        secret is available again from its file or environment variable)."""
        Path(path).write_text(yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False), encoding="utf-8")

    def explicit_values(self) -> dict[str, Any]:
        """The fields that were set explicitly, with their real values (secrets included, nothing
        serialised; nested models deep-copied). Rebuilding from them re-derives every derived value."""
        return {name: copy.deepcopy(getattr(self, name)) for name in self.model_fields_set}

    def with_updates(self: ModelT, **changes: Any) -> ModelT:
        """A validated copy with ``changes`` applied (``model_copy(update=…)`` skips validation, and
        ``model_dump()`` hides secrets, so neither round-trips a config).

        Raises:
            ConfigError: The result is invalid (one line naming each field).
        """
        return type(self).build(source=f"{type(self).__name__} update", **{**self.explicit_values(), **changes})
