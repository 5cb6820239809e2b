"""CLI options generated from the config models: help text and value collection."""

from __future__ import annotations

import argparse
import re

from sglang_test_framework.cli_args import add_model_arguments, collect_model_values
from sglang_test_framework.config.node_config import NodeConfig
from sglang_test_framework.config.router_config import RouterConfig
from sglang_test_framework.config.routing_config import RoutingConfig


def _help(*models: type[NodeConfig] | type[RoutingConfig] | type[RouterConfig]) -> str:
    parser = argparse.ArgumentParser(prog="t")
    for i, model in enumerate(models):
        add_model_arguments(parser, model, model.__name__, prefix="router_" if i else "")
    return parser.format_help()


def test_required_fields_say_required_not_pydantic_undefined() -> None:
    text = _help(NodeConfig)
    assert "PydanticUndefined" not in text
    assert re.search(r"--model-path MODEL_PATH\s+\(required\)", text)
    assert "(default: 200)" in text  # num_prompts keeps its default


def test_routing_help_has_the_shared_server_flags_and_no_alias_fields() -> None:
    text = _help(RoutingConfig, RouterConfig)
    assert "PydanticUndefined" not in text
    for flag in ("--context-length", "--max-prefill-tokens", "--served-model-name", "--extra-args", "--api-key-file"):
        assert flag in text
    assert "--router-config" not in text and "--server-extra-args" not in text
    assert "--router-cache-threshold" in text


def test_only_given_flags_are_collected() -> None:
    parser = argparse.ArgumentParser()
    add_model_arguments(parser, NodeConfig, "node")
    args = parser.parse_args(["--model-path", "m", "--request-rate", "inf", "--no-stream"])
    assert collect_model_values(args, NodeConfig) == {"model_path": "m", "request_rate": float("inf"), "stream": False}
