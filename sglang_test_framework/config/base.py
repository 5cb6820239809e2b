"""Base model for every configuration: unknown keys are rejected and YAML loading reports field paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import ConfigError

__all__ = ["StrictModel", "format_validation_error", "load_yaml_mapping"]

ModelT = TypeVar("ModelT", bound="StrictModel")


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem, each naming the field path, e.g. ``request_rate: must be > 0``."""
    lines = [f"invalid {source}:"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field; check the spelling or remove it"
        lines.append(f"  {loc}: {msg}")
    return "\n".join(lines)


def load_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """Read a YAML file that must contain a mapping; errors name the file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist; pass the path of a YAML file")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {p} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must contain a mapping of field: value, got {type(data).__name__}")
    return data


class StrictModel(BaseModel):
    """Pydantic v2 model that rejects unknown keys and re-validates on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    @classmethod
    def build(cls: type[ModelT], source: str = "config", **values: Any) -> ModelT:
        """Construct, turning pydantic errors into :class:`ConfigError` with field paths."""
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, source)) from exc

    @classmethod
    def yaml_values(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Turn a YAML mapping into field values (subclasses accept template sections here)."""
        return data

    @classmethod
    def from_yaml(cls: type[ModelT], path: str | Path, **overrides: Any) -> ModelT:
        """Load from a YAML mapping (``overrides`` win); errors name the file and each offending field."""
        values = {**cls.yaml_values(load_yaml_mapping(path)), **overrides}
        return cls.build(source=f"{cls.__name__} in {path}", **values)

    def to_yaml(self, path: str | Path) -> None:
        """Write this config as YAML (round-trips through :meth:`from_yaml`)."""
        Path(path).write_text(yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False))
