"""argparse options generated from pydantic config models, so CLI flags and config fields never drift.

Each field ``foo_bar`` becomes ``--foo-bar``; booleans get ``--foo-bar`` / ``--no-foo-bar``; lists take
several values; dicts take a JSON object. Only flags the user gave are applied (argparse.SUPPRESS), on
top of an optional ``--config file.yaml``.
"""

from __future__ import annotations

import argparse
import json
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo

__all__ = ["add_model_arguments", "collect_model_values"]


def _unwrap_optional(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}: {exc}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _float(text: str) -> float:
    return float(text)  # accepts 'inf'


def _add_one(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    name: str,
    annotation: Any,
    help_text: str,
    aliases: list[str],
    prefix: str = "",
) -> None:
    flag = "--" + (prefix + name).replace("_", "-")
    flags = [flag, *aliases]
    dest = f"{prefix}_{name}" if prefix else name
    common: dict[str, Any] = {"dest": dest, "default": argparse.SUPPRESS, "help": help_text}
    ann = _unwrap_optional(annotation)
    origin = typing.get_origin(ann)
    if ann is bool:
        parser.add_argument(*flags, action="store_true", **common)
        parser.add_argument(
            "--no-" + (prefix + name).replace("_", "-"),
            action="store_false",
            dest=dest,
            default=argparse.SUPPRESS,
            help=argparse.SUPPRESS,
        )
    elif origin is Literal:
        parser.add_argument(*flags, choices=[str(c) for c in typing.get_args(ann)], **common)
    elif origin is list:
        parser.add_argument(*flags, nargs="*", **common)
    elif origin is dict:
        parser.add_argument(*flags, type=_json_object, **common)
    elif ann is int:
        parser.add_argument(*flags, type=int, **common)
    elif ann is float:
        parser.add_argument(*flags, type=_float, **common)
    elif ann is Path:
        parser.add_argument(*flags, type=Path, **common)
    else:
        parser.add_argument(*flags, type=str, **common)


def _help_text(info: FieldInfo) -> str:
    """The field's description plus ``(required)`` or its default (None and empty defaults left out)."""
    if info.is_required():
        suffix = "(required)"
    else:
        default = info.get_default(call_default_factory=True)
        suffix = f"(default: {default})" if default not in (None, [], {}) else ""
    return f"{info.description or ''} {suffix}".strip()


def add_model_arguments(
    parser: argparse.ArgumentParser,
    model: type[BaseModel],
    title: str,
    aliases: Mapping[str, list[str]] | None = None,
    skip: set[str] | None = None,
    prefix: str = "",
) -> None:
    """Add one option per field of ``model`` (nested models are skipped) in an argument group.

    With ``prefix='router_'`` a field ``port`` becomes ``--router-port`` (dest ``router__port``)."""
    group = parser.add_argument_group(title)
    aliases = aliases or {}
    for name, info in model.model_fields.items():
        if skip and name in skip:
            continue
        ann = _unwrap_optional(info.annotation)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            continue
        _add_one(group, name, info.annotation, _help_text(info), aliases.get(name, []), prefix)


def collect_model_values(namespace: argparse.Namespace, model: type[BaseModel], prefix: str = "") -> dict[str, Any]:
    """The values the user gave on the command line for ``model``'s fields."""
    given = vars(namespace)
    out = {}
    for name in model.model_fields:
        dest = f"{prefix}_{name}" if prefix else name
        if dest in given:
            out[name] = given[dest]
    return out
